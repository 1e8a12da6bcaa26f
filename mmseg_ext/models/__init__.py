from . import backbones, decode_heads, layers, lm, panoptic  # noqa: F401
