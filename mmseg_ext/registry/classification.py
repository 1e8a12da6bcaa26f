"""ImageNet classification on mmpretrain (configs/ls_transformer/*_in1k*, configs/segformer/
mit-*_in1k): the ViL-LS, CvT-LS and MiT backbones; the training hooks."""
from ..engine import hooks, resumable_epoch_loop  # noqa: F401
from ..models import backbones  # noqa: F401
