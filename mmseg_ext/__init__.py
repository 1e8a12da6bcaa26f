"""SegFormer, Panoptic SegFormer and Long-Short Transformer attention for OpenMMLab 2.x.

Importing the package registers every module (see docs/registry.md) and applies the
compatibility fixes in :mod:`mmseg_ext.compat`.
"""
from . import (  # noqa: F401  (compat fixes, then registration)
    compat,
    datasets,
    engine,
    evaluation,
    models,
)
from .version import __version__

__all__ = ['__version__']
