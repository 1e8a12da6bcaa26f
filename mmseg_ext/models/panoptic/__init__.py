"""Panoptic SegFormer (Li et al., CVPR 2022) on mmdet 3.x; see docs/panoptic_segformer.md."""
from .attention_to_mask import AttentionToMask
from .detector import PanopticSegFormer
from .dice_cost import PanSegDiceCost
from .head import PanopticSegFormerHead
from .mask_decoder import MaskDecoderLayer, PanSegMaskDecoder
from .merging import MaskWiseMerging
from .query_filter import PanSegQueryFilter

__all__ = [
    'AttentionToMask', 'MaskDecoderLayer', 'MaskWiseMerging', 'PanSegDiceCost',
    'PanSegMaskDecoder', 'PanSegQueryFilter', 'PanopticSegFormer', 'PanopticSegFormerHead'
]
