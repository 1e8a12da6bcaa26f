"""Config checks that need no data: misspelled or outdated keys, hook arguments, data roots.

mmengine ignores top-level keys it does not know, and ``CheckpointHook`` accepts any keyword and
fails only at its first save, after the first training interval. These checks turn both into
errors before anything runs.
"""
import difflib
import inspect
import os.path as osp

from .config_walk import split_datasets

# The top-level keys mmengine's Runner reads (Runner.from_cfg and Runner.__init__).
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
    'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor', 'load_from', 'resume',
    'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer', 'default_scope',
    'randomness', 'experiment_name', 'model_wrapper_cfg', 'custom_imports', 'runner_type',
    'compile', 'activation_checkpointing', 'efficient_conv_bn_eval', 'strategy')
# mmcv 1.x / OpenMMLab 1.x keys that the 2.x Runner silently ignores. (Not `optimizer` and
# `data`: 2.x configs use them as variables, e.g. optim_wrapper = dict(optimizer=optimizer).)
OUTDATED_KEYS = {
    'optimizer_config': 'optim_wrapper (clip_grad=..., type=AmpOptimWrapper)',
    'lr_config': 'param_scheduler',
    'checkpoint_config': 'default_hooks.checkpoint',
    'log_config': 'default_hooks.logger',
    'evaluation': 'val_evaluator and train_cfg.val_interval',
    'runner': 'train_cfg=dict(type=..., max_iters=... or max_epochs=...)',
    'total_epochs': 'train_cfg.max_epochs',
    'workflow': 'train_cfg / val_cfg',
}


def check_top_level_keys(cfg):
    """Raise on a top-level key that is a near-miss of a Runner key or an OpenMMLab 1.x key.

    Other unknown keys are config variables (crop_size, data_root, ...) and stay allowed.
    """
    problems = []
    for key in cfg.keys():
        if key in RUNNER_KEYS or key.startswith('_'):
            continue
        if key in OUTDATED_KEYS:
            problems.append(f'{key!r} is an OpenMMLab 1.x key that mmengine ignores; use '
                            f'{OUTDATED_KEYS[key]}')
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.85)
        if close:
            problems.append(f'{key!r} is not a key the Runner reads (it would be ignored); did '
                            f'you mean {close[0]!r}?')
    if problems:
        raise KeyError('config: ' + '; '.join(problems))


def unknown_keys_error(where, keys, known, owner):
    """A ``KeyError`` for ``keys`` that ``owner`` does not take, each with its closest known key
    (difflib), listing what ``owner`` takes."""
    hints = []
    for key in keys:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hints.append(f'{key!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    return KeyError(f'{where}: unknown keys {", ".join(hints)}. {owner} takes: '
                    f'{", ".join(known)}')


def init_arguments(cls):
    """The keyword arguments ``cls(...)`` accepts: its ``__init__`` parameters and, while an
    ``__init__`` takes ``**kwargs``, those of its base classes."""
    known = []
    for klass in cls.__mro__:
        if '__init__' not in vars(klass) or klass is object:
            continue
        params = inspect.signature(klass.__init__).parameters.values()
        known += [p.name for p in params if p.name != 'self' and p.name not in known
                  and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return known


def check_hook_arguments(runner):
    """Raise if ``CheckpointHook`` got keys it would only reject at its first save."""
    from mmengine.hooks import CheckpointHook
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook) and hook.args:
            known = [p for p in inspect.signature(CheckpointHook.__init__).parameters
                     if p not in ('self', 'kwargs')]
            raise unknown_keys_error('default_hooks.checkpoint', hook.args, known,
                                     'CheckpointHook')


# The env_cfg keys mmengine's Runner reads (Runner.setup_env); mmseg_ext reads no others.
ENV_CFG_KEYS = ('cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit')


def check_env_cfg(cfg):
    """Raise on ``env_cfg`` keys (and ``env_cfg.mp_cfg`` keys) that nothing reads."""
    from mmengine.utils.dl_utils import set_multi_processing
    env_cfg = cfg.get('env_cfg') or {}
    unknown = [key for key in env_cfg if key not in ENV_CFG_KEYS]
    if unknown:
        raise unknown_keys_error('env_cfg', unknown, list(ENV_CFG_KEYS), "mmengine's Runner")
    mp_keys = [p for p in inspect.signature(set_multi_processing).parameters
               if p != 'distributed']
    unknown = [key for key in env_cfg.get('mp_cfg') or {} if key not in mp_keys]
    if unknown:
        raise unknown_keys_error('env_cfg.mp_cfg', unknown, mp_keys, 'set_multi_processing')


# Evaluator keys that are not metric arguments: the registry's, and ``keep_results``, which
# mmseg's tools/test.py (and ours, for --out) sets on IoUMetric, which ignores it.
TOOL_EVALUATOR_KEYS = ('type', '_scope_', 'keep_results')


def check_evaluator_arguments(cfg, keys):
    """Raise on evaluator options that the metric class does not take (``iou_metric`` for
    IoUMetric's ``iou_metrics``): mmseg's metrics swallow unknown keywords. ``keys`` are the
    evaluator keys the run uses (``val_evaluator``, ``test_evaluator``)."""
    from mmengine.registry import METRICS
    for key in keys:
        metrics = cfg.get(key) or []
        if isinstance(metrics, dict):  # an Evaluator's dict, or one metric
            metrics = metrics.get('metrics', metrics)
        if isinstance(metrics, dict):
            metrics = [metrics]
        for i, metric in enumerate(metrics):
            where = f'{key}.{i}' if len(metrics) > 1 else key
            metric_type = metric.get('type')
            if isinstance(metric_type, str):
                scope = metric.get('_scope_', cfg.get('default_scope'))
                with METRICS.switch_scope_and_registry(scope) as registry:
                    metric_type = registry.get(metric_type)
            if not isinstance(metric_type, type):
                continue  # an unknown type fails in the registry, naming it
            known = init_arguments(metric_type)
            unknown = [k for k in metric if k not in known and k not in TOOL_EVALUATOR_KEYS]
            if unknown:
                raise unknown_keys_error(where, unknown, known, metric_type.__name__)


def schedule_length_warnings(cfg):
    """Warnings, naming the option to change, for a ``param_scheduler`` whose ``end`` lies past
    the end of training (``train_cfg.max_iters`` for ``by_epoch=False`` schedulers of
    iteration-based runs, ``max_epochs`` for epoch schedulers of epoch-based runs): its decay is
    cut short, typically because ``max_iters`` was shortened and the schedule was not. An
    ``end`` of the training length + 1 is the full schedule (mmengine's factors reach their end
    value at ``end - 1``)."""
    train_cfg = cfg.get('train_cfg') or {}
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    warnings = []
    for i, scheduler in enumerate(schedulers):
        end = scheduler.get('end')
        unit = 'epochs' if scheduler.get('by_epoch', True) else 'iters'
        total = train_cfg.get(f'max_{unit}')
        if end is None or total is None or end <= total + 1:
            continue
        option = f'param_scheduler.{i}.end' if len(schedulers) > 1 else 'param_scheduler.end'
        warnings.append(
            f'param_scheduler[{i}] ({scheduler.get("type")}) runs to {unit[:-1]} {end}, but '
            f'training stops at train_cfg.max_{unit}={total}: its schedule is cut short. If you '
            f'shortened the training, shorten the schedule too, e.g. --cfg-options '
            f'{option}={total + 1}')
    return warnings


def check_data_roots(cfg, splits):
    """Fail early, naming the config key, when a used dataset folder does not exist."""
    for name, dataset in split_datasets(cfg, splits):
        root = dataset.get('data_root')
        if root and not osp.isdir(root):
            raise FileNotFoundError(
                f'{name}.data_root = {root!r} does not exist. Put the dataset there '
                f'(docs/datasets.md), pass --cfg-options {name}.data_root=PATH, '
                'or generate the built-in data with tools/misc/make_toy_data.py (images) '
                'or tools/misc/make_toy_lra.py (Long Range Arena).')
