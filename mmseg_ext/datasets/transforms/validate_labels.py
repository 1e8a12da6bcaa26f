"""Fail on label values a model cannot learn, naming the annotation file."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ValidateSegLabels(BaseTransform):
    """Raise if ``gt_seg_map`` holds values outside ``[0, num_classes)`` other than
    ``ignore_index``. Put it right after ``LoadAnnotations``: a wrong label value otherwise
    surfaces later as an opaque index error inside the loss, with no file named."""

    def __init__(self, num_classes, ignore_index=255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results):
        seg = results['gt_seg_map']
        if seg.max(initial=0) >= self.num_classes:
            values = np.unique(seg)
            bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
            if bad.size:
                raise ValueError(
                    f'{results.get("seg_map_path")}: label values {bad.tolist()} (after '
                    f'reduce_zero_label={results.get("reduce_zero_label")}) are outside '
                    f'[0, {self.num_classes}) and not ignore_index {self.ignore_index}. Check '
                    'the annotation, num_classes and reduce_zero_label in the config.')
        return results
