"""The official SegFormer test-time resize: keep the aspect ratio, then round each side up to a
multiple of ``size_divisor`` (32), so every stage's feature map has integer size."""
import math

import mmcv
from mmcv.transforms import Resize
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class AlignedResize(Resize):
    """:class:`mmcv.transforms.Resize` (``keep_ratio=True``) with sides rounded up to a multiple
    of ``size_divisor``. Takes ``scale`` or ``scale_factor`` like ``Resize``."""

    def __init__(self, *args, size_divisor=32, **kwargs):
        kwargs.setdefault('keep_ratio', True)
        super().__init__(*args, **kwargs)
        self.size_divisor = size_divisor

    def _aligned_size(self, results):
        h, w = results['img'].shape[:2]
        new_w, new_h = mmcv.rescale_size((w, h), results['scale'])
        d = self.size_divisor
        return math.ceil(new_w / d) * d, math.ceil(new_h / d) * d

    def _resize_img(self, results):
        if results.get('img') is None:
            return
        h, w = results['img'].shape[:2]
        new_w, new_h = self._aligned_size(results)
        results['img'] = mmcv.imresize(results['img'], (new_w, new_h),
                                       interpolation=self.interpolation, backend=self.backend)
        results['img_shape'] = (new_h, new_w)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = True

    def _resize_seg(self, results):
        new_h, new_w = results['img_shape']
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = mmcv.imresize(results['gt_seg_map'], (new_w, new_h),
                                                  interpolation='nearest', backend=self.backend)
