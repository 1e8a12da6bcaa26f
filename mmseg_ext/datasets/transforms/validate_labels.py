"""Fail on a label map the model cannot learn from or be scored on, naming the files."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ValidateSegLabels(BaseTransform):
    """Raise if ``gt_seg_map`` does not fit its image or holds a value outside
    ``[0, num_classes)`` other than ``ignore_index``.

    Put it right after ``LoadAnnotations`` (in training and test pipelines). Otherwise a wrong
    label value surfaces as an opaque index error inside the loss (or is silently miscounted by
    the metric), and a mask of another size than its image is silently resized in training and
    crashes the metric in testing, with no file named.

    ``num_classes`` and ``ignore_index`` default to the dataset's: :func:`mmseg_ext.apis.
    build_runner` fills them in from the dataset's ``metainfo`` (and checks given values against
    it), and adds this transform after ``LoadAnnotations`` where a pipeline lacks it.
    """

    def __init__(self, num_classes=None, ignore_index=255):
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def transform(self, results):
        seg = results.get('gt_seg_map')
        if seg is None:  # inference without annotations (mmseg's inference_model drops them)
            return results
        where = f'{results.get("seg_map_path")} (image {results.get("img_path")})'
        if seg.ndim != 2:
            raise ValueError(f'{where}: the mask has shape {seg.shape}; masks must be '
                             'single-channel label maps (one class index per pixel), not colour '
                             'images. tools/misc/check_dataset.py lists every such file.')
        image_shape = results.get('ori_shape')
        if image_shape is not None and tuple(seg.shape) != tuple(image_shape[:2]):
            raise ValueError(
                f'{results.get("seg_map_path")} is {seg.shape[0]}x{seg.shape[1]} (HxW) but its '
                f'image {results.get("img_path")} is {image_shape[0]}x{image_shape[1]}: a mask '
                'must have the size of its image. tools/misc/check_dataset.py lists every '
                'mismatch.')
        if self.num_classes is not None and seg.max(initial=0) >= self.num_classes:
            values = np.unique(seg)
            bad = values[(values >= self.num_classes) & (values != self.ignore_index)]
            if bad.size:
                raise ValueError(
                    f'{where}: label values {bad.tolist()} (after '
                    f'reduce_zero_label={results.get("reduce_zero_label")}) are outside '
                    f'[0, {self.num_classes}) and not ignore_index {self.ignore_index}. Check '
                    'the annotation, the classes and reduce_zero_label in the config '
                    '(tools/misc/check_dataset.py CONFIG lists every such file).')
        return results
