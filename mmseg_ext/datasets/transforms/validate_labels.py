"""Fail on a label map the model cannot learn from or be scored on, naming the files."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..image_io import SWAPS_SIDES, exif_orientation, mask_order, to_stored


@TRANSFORMS.register_module()
class ValidateSegLabels(BaseTransform):
    """Raise if ``gt_seg_map`` does not fit its image, holds a value outside
    ``[0, num_classes)`` other than ``ignore_index``, or belongs to a photo with an EXIF
    orientation tag but follows the other pixel order than the image as loaded
    (``exif_applied``: whether ``LoadImageFromFile`` applies the tag, mmcv's default;
    :mod:`mmseg_ext.datasets.image_io`).

    Put it right after ``LoadAnnotations`` (in training and test pipelines). Otherwise a wrong
    label value surfaces as an opaque index error inside the loss (or is silently miscounted by
    the metric), and a mask of another size than its image is silently resized in training and
    crashes the metric in testing, with no file named.

    ``num_classes`` and ``ignore_index`` default to the dataset's: :func:`mmseg_ext.apis.
    build_runner` fills them in from the dataset's ``metainfo`` (and checks given values against
    it), and adds this transform after ``LoadAnnotations`` where a pipeline lacks it.
    """

    def __init__(self, num_classes=None, ignore_index=255, exif_applied=True):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.exif_applied = exif_applied

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
        orientation = exif_orientation(results['img_path']) if results.get('img_path') else 1
        if image_shape is not None and tuple(seg.shape) != tuple(image_shape[:2]):
            rotated = orientation in SWAPS_SIDES and tuple(seg.shape) == tuple(image_shape[1::-1])
            raise ValueError(
                f'{results.get("seg_map_path")} is {seg.shape[0]}x{seg.shape[1]} (HxW) but its '
                f'image {results.get("img_path")} is {image_shape[0]}x{image_shape[1]}' +
                (self._exif_hint(orientation, 'the mask is drawn on the image turned the '
                                 'other way') if rotated else
                 ': a mask must have the size of its image') +
                '. tools/misc/check_dataset.py lists every mismatch.')
        if orientation != 1 and results.get('img') is not None:
            grey = np.asarray(results['img'], dtype=np.float32)
            grey = grey.mean(2) if grey.ndim == 3 else grey
            order = mask_order(to_stored(grey, orientation) if self.exif_applied else grey,
                               orientation, seg)
            if order is not None and order != ('display' if self.exif_applied else 'stored'):
                raise ValueError(
                    f'{results.get("seg_map_path")} follows its image {results["img_path"]} '
                    f'in {order} pixel order' + self._exif_hint(
                        orientation, 'its label boundaries follow the image turned the other '
                        'way') + '. tools/misc/check_dataset.py lists every such file.')
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

    def _exif_hint(self, orientation, what):
        loaded = ('applies it (display order, as viewers show the image)' if self.exif_applied
                  else 'ignores it (stored order)')
        return (f': the image has EXIF orientation {orientation}, which LoadImageFromFile '
                f'{loaded}, and {what}. Rotate the masks to match, or strip the tag from the '
                'images (docs/datasets.md, "Phone photos")')
