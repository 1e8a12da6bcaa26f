from .aligned_resize import AlignedResize  # noqa: F401
from .corruption import ImageCorruption  # noqa: F401
from .validate_labels import ValidateSegLabels  # noqa: F401
