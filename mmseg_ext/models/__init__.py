from . import backbones, decode_heads, layers, panoptic  # noqa: F401
