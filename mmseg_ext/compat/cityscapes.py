"""cityscapesscripts 2.3.0 on numpy >= 2.4.

The official evaluation (``evalPixelLevelSemanticLabeling``, used by mmseg's CityscapesMetric with
the instance-level score on) calls ``np.in1d``, which numpy 2.4 removed. We hand that one module
a numpy whose ``in1d`` is the documented replacement, ``np.isin`` on the flattened input; numpy
itself is left untouched.
"""
import numpy as np

from .numpy_view import NumpyView


def _in1d(ar1, ar2, assume_unique=False, invert=False):
    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def patch_cityscapes_evaluation():
    if hasattr(np, 'in1d'):
        return
    try:
        import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs_eval
    except ImportError:
        return
    if not isinstance(cs_eval.np, NumpyView):
        cs_eval.np = NumpyView(in1d=_in1d)
