"""Panoptic SegFormer on mmdet (configs/panoptic_segformer): the detector, its head, mask
decoder, query filter, merging and matching cost; MiT as a backbone; the training hooks."""
from ..engine import hooks, resumable_epoch_loop  # noqa: F401
from ..models import backbones, panoptic  # noqa: F401
