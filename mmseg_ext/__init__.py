"""SegFormer, Panoptic SegFormer and Long-Short Transformer attention for OpenMMLab 2.x.

Importing the package applies the compatibility fixes in :mod:`mmseg_ext.compat`, each when the
module it fixes is imported, and registers nothing: configs name their family in
``custom_imports`` (:mod:`mmseg_ext.registry`, docs/registry.md).
"""
from . import compat  # noqa: F401
from .version import __version__

__all__ = ['__version__']
