from . import backbones, decode_heads, layers, lm, lra, panoptic  # noqa: F401
