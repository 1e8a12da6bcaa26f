"""Registration on demand, as OpenMMLab does it (docs/registry.md).

``import mmseg_ext`` registers nothing. Each model family has a module here that registers what
its configs use, and configs name it in ``custom_imports``::

    custom_imports = dict(imports=['mmseg_ext.registry.segformer'], allow_failed_imports=False)

so that a SegFormer run never imports what Panoptic SegFormer (mmdet), the classifiers
(mmpretrain) or the LS language models need. :func:`register_all_modules` imports every family.
"""
import importlib

FAMILIES = ('segformer', 'panoptic', 'ls', 'classification')


def register_all_modules():
    """Register every family's modules (mmseg, mmdet, mmpretrain and mmengine registries)."""
    for family in FAMILIES:
        importlib.import_module(f'{__name__}.{family}')


__all__ = ['FAMILIES', 'register_all_modules']
