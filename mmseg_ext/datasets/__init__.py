from . import char_lm, lra, transforms  # noqa: F401
