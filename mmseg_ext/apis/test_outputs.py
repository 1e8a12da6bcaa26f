"""Where ``tools/test.py`` writes a segmentation config's predictions (``--out``,
``--cityscapes-out``)."""
from ..checks.config_walk import leaf_datasets, type_name
from ..checks.seg_data import build_seg_dataset


def is_cityscapes_test_set(cfg):
    """True if the config's test set is a Cityscapes dataset (mmseg's class or a subclass)."""
    from mmseg.datasets import CityscapesDataset
    return any(isinstance(build_seg_dataset(dataset, cfg.get('default_scope')), CityscapesDataset)
               for _, dataset in leaf_datasets(cfg.test_dataloader.dataset, 'test'))


def set_segmentation_outputs(cfg, out=None, cityscapes_out=None):
    """Set up ``cfg.test_evaluator`` to write predictions.

    ``out``: a label map per test image. mmseg's IoUMetric writes ``<image name>.png`` (class
    indices); for a Cityscapes test set :class:`~mmseg_ext.evaluation.CityscapesLabelIdWriter`
    writes ``<image name>_labelIds.png`` in label ids instead, which the official evaluation
    scores as they are (train ids under the image's name would be scored as label ids).

    ``cityscapes_out``: mmseg's CityscapesMetric (added if the config lacks it) writes its
    results there and keeps them (``keep_results=True``; it deletes them at exit otherwise).
    """
    evaluators = cfg.test_evaluator
    evaluators = list(evaluators) if isinstance(evaluators, (list, tuple)) else [evaluators]
    cityscapes = (out or cityscapes_out) and is_cityscapes_test_set(cfg)
    if out and cityscapes:
        evaluators.append(dict(type='CityscapesLabelIdWriter', output_dir=out))
    elif out:
        for evaluator in evaluators:
            if type_name(evaluator) == 'IoUMetric':
                evaluator.update(output_dir=out, keep_results=True)
    if cityscapes_out:
        if not cityscapes:
            kind = cfg.test_dataloader.dataset.get('type')
            raise ValueError(f'--cityscapes-out: the test set ({kind}) is not a '
                             'CityscapesDataset')
        metric = next((e for e in evaluators if type_name(e) == 'CityscapesMetric'), None)
        if metric is None:
            metric = dict(type='CityscapesMetric')
            evaluators.append(metric)
        metric.update(output_dir=cityscapes_out, keep_results=True)
    cfg.test_evaluator = evaluators
