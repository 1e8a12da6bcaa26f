from . import hooks  # noqa: F401
from .resumable_epoch_loop import ResumableEpochBasedTrainLoop

__all__ = ['ResumableEpochBasedTrainLoop']
