"""SegFormer on mmseg (configs/segformer): MiT and the ImageNet backbones, the All-MLP head, the
segmentation transforms, the Cityscapes label-id writer, the training hooks and loop."""
from ..datasets.transforms import aligned_resize, validate_labels  # noqa: F401
from ..engine import hooks, resumable_epoch_loop  # noqa: F401
from ..evaluation.metrics import cityscapes  # noqa: F401
from ..models import backbones, decode_heads  # noqa: F401
