"""``--tta``: the multi-scale + flip test of mmseg, at the scale of the config's own test."""
import copy

from mmengine.config import Config, ConfigDict

from ..checks.config_walk import leaf_datasets

RESIZE_STEPS = ('AlignedResize', 'Resize')


def multi_scale_flip_pipeline(test_pipeline: list, ratios: list) -> list:
    """The test pipeline with its resize run at every ``ratio`` of its scale (``int(side *
    ratio)``, as mmseg 0.x's ``MultiScaleFlipAug(img_ratios=...)``), each view with and without a
    horizontal flip; the steps after the resize follow every view."""
    index = next((i for i, step in enumerate(test_pipeline)
                  if step['type'] in RESIZE_STEPS and 'scale' in step), None)
    if index is None:
        raise ValueError(f'--tta: the test pipeline has no {" / ".join(RESIZE_STEPS)} step with a '
                         '`scale` to build the multi-scale views from; give the config a '
                         '`tta_pipeline`')
    resize, scale = test_pipeline[index], test_pipeline[index]['scale']
    scales = [dict(copy.deepcopy(resize), scale=int(scale * r) if isinstance(scale, (int, float))
                   else tuple(int(side * r) for side in scale)) for r in ratios]
    flips = [dict(type='RandomFlip', prob=prob, direction='horizontal') for prob in (0., 1.)]
    tta = dict(type='TestTimeAug', transforms=[scales, flips, *(
        [copy.deepcopy(step)] for step in test_pipeline[index + 1:])])
    return [ConfigDict(step) for step in (*copy.deepcopy(test_pipeline[:index]), tta)]


def enable_tta(cfg: Config, config_name: str) -> None:
    """Switch ``cfg`` to test-time augmentation: ``tta_model`` wraps the model; the test data go
    through ``tta_pipeline`` if the config has one, else through the config's test pipeline at
    every ratio of ``tta_ratios`` (:func:`multi_scale_flip_pipeline`); every dataset inside
    the test set's wrappers gets it."""
    if 'tta_model' not in cfg:
        raise KeyError(f'--tta needs `tta_model` in {config_name} (e.g. '
                       "tta_model = dict(type='SegTTAModel'))")
    if 'tta_pipeline' not in cfg and 'tta_ratios' not in cfg:
        raise KeyError(f'--tta needs `tta_ratios` (scales relative to the test scale, e.g. '
                       f'[0.5, 0.75, 1.0, 1.25, 1.5, 1.75]) or a `tta_pipeline` in {config_name}')
    for _, dataset in leaf_datasets(cfg.test_dataloader.dataset, 'test_dataloader.dataset'):
        dataset['pipeline'] = (cfg.tta_pipeline if 'tta_pipeline' in cfg else
                               multi_scale_flip_pipeline(dataset['pipeline'], cfg.tta_ratios))
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
