"""cityscapesscripts 2.3.0 on numpy >= 2.4.

The official evaluation (``evalPixelLevelSemanticLabeling``, used by mmseg's CityscapesMetric with
the instance-level score on) calls ``np.in1d``, which numpy 2.4 removed. We hand that one module
a numpy whose ``in1d`` is the documented replacement, ``np.isin`` on the flattened input; numpy
itself is left untouched. :func:`official_pixel_evaluation` runs that evaluation as its own
command line (``csEvalPixelLevelSemanticLabeling``) does, with the fix
(``tools/misc/cityscapes_eval.py``).
"""
import glob
import os.path as osp

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


def official_pixel_evaluation(dataset_root=None, results_dir=None, export_dir=None, split='val'):
    """cityscapesscripts' ``csEvalPixelLevelSemanticLabeling`` without arguments, on numpy
    >= 2.4: every ``gtFine/SPLIT/*/*_gtFine_labelIds.png`` under ``dataset_root`` against the one
    prediction matching ``CITY_SEQ_FRAME*.png`` under ``results_dir`` (label ids), the JSON
    written to ``export_dir``. Arguments left out keep the official defaults (the environment
    variables ``CITYSCAPES_DATASET``, ``CITYSCAPES_RESULTS``, ``CITYSCAPES_EXPORT_DIR``).
    Returns the official results dict (``averageScoreClasses``, ``averageScoreCategories``,
    ...)."""
    patch_cityscapes_evaluation()
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as cs_eval
    args = cs_eval.args
    if dataset_root:
        args.cityscapesPath = dataset_root
        args.exportFile = osp.join(dataset_root, 'evaluationResults',
                                   'resultPixelLevelSemanticLabeling.json')
    args.groundTruthSearch = osp.join(args.cityscapesPath, 'gtFine', split, '*',
                                      '*_gtFine_labelIds.png')
    if results_dir:
        args.predictionPath, args.predictionWalk = results_dir, None
    if export_dir:
        args.exportFile = osp.join(export_dir, 'resultPixelLevelSemanticLabeling.json')
    ground_truth = sorted(glob.glob(args.groundTruthSearch))
    if not ground_truth:
        raise FileNotFoundError(f'no Cityscapes ground truth {args.groundTruthSearch}: give the '
                                'dataset root (the folder holding gtFine/)')
    predictions = [cs_eval.getPrediction(args, gt) for gt in ground_truth]
    return cs_eval.evaluateImgLists(predictions, ground_truth, args)
