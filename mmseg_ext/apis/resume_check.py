"""``--resume`` with a config that differs from the checkpoint's (docs/compat.md).

mmengine restores the optimizer and param scheduler states from the checkpoint, so a new
learning rate or schedule given with ``--resume`` is silently ignored, while the config saved
in the work dir shows the new values; a different model fails late (size mismatches, then the
optimizer). Here the config the checkpoint holds (``meta['cfg']``, read as data) is compared
with the new config before anything is built.
"""
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from ..compat.checkpoint import (
    CheckpointReadError,
    checkpoint_config,
    load_checkpoint_file,
    why_unreadable,
)
from ..utils.checkpoint import checkpoint_state_dict, raise_on_mismatch

SHOWN = 5  # differing keys listed in an error
# Loader settings that do not change what is trained (and a data set that moved).
LOADER_ONLY = {'num_workers', 'persistent_workers', 'pin_memory', 'prefetch_factor', 'data_root'}


# Norm layers with the same weights: CPU-distributed runs turn SyncBN into BN (launch.py), and
# mmengine does so in single-process runs.
SAME_WEIGHTS = {'SyncBN': 'BN', 'MMSyncBN': 'BN'}


def _flatten(value, prefix, out):
    if isinstance(value, str) and prefix.endswith('.type'):
        value = SAME_WEIGHTS.get(value, value)
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f'{prefix}.{key}', out)
    elif isinstance(value, (list, tuple)) and value:
        for i, item in enumerate(value):
            _flatten(item, f'{prefix}.{i}', out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value
    return out


def config_differences(old, new, keys):
    """``(dotted key, old value, new value)`` for every leaf under the top-level ``keys`` that
    differs between the config dicts ``old`` and ``new`` (``'<unset>'`` where one lacks it)."""
    unset = '<unset>'
    diffs = []
    for key in keys:
        a, b = _flatten(old.get(key), key, {}), _flatten(new.get(key), key, {})
        for leaf in dict.fromkeys([*a, *b]):
            if key == 'train_dataloader' and leaf.rsplit('.', 1)[-1] in LOADER_ONLY:
                continue
            if a.get(leaf, unset) != b.get(leaf, unset):
                diffs.append((leaf, a.get(leaf, unset), b.get(leaf, unset)))
    return diffs


def _listing(diffs):
    lines = [f'  {key}: checkpoint {old!r}, config {new!r}' for key, old, new in diffs[:SHOWN]]
    if len(diffs) > SHOWN:
        lines.append(f'  ... and {len(diffs) - SHOWN} more')
    return '\n'.join(lines)


def read_resume_checkpoint(filename):
    """The checkpoint ``--resume`` continues from, memory-mapped (mmengine reads it again to
    resume; the pages are shared, not copied)."""
    try:
        return load_checkpoint_file(filename, mmap=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # refused (crafted) or unreadable: name the file, as mmengine's
        raise CheckpointReadError(f'--resume: cannot read checkpoint {filename!r}: '
                                  f'{why_unreadable(filename, error)}') from error


def check_resume_config(cfg, filename, checkpoint, new_schedule=False):
    """Refuse ``--resume`` from ``filename`` when ``cfg`` trains another model or other data
    than the checkpoint's config; an optimizer or schedule change is refused too, unless
    ``new_schedule`` (``--resume-with-new-schedule``). Returns the optimizer / schedule
    differences that are to be applied."""
    meta = checkpoint.get('meta') or {}
    # mmengine's Runner writes 'cfg'; its resume reads 'config' (a crafted one is refused here)
    configs = {key: checkpoint_config(meta[key], filename) for key in ('cfg', 'config')
               if meta.get(key)}
    if not configs:
        print_log(f"--resume: {filename} holds no config (meta['cfg']), so the config cannot "
                  'be compared with it', logger='current')
        return []
    old = configs.get('cfg', configs.get('config'))
    where = f'--resume from {filename} (iteration {meta.get("iter")})'
    model = config_differences(old, cfg, ['model'])
    if model:
        raise ValueError(
            f"{where}: the config's model differs from the one the checkpoint was trained "
            f'with:\n{_listing(model)}\nIts weights do not fit this model. Resume with the '
            'config the checkpoint was trained with, or start a new run in another --work-dir '
            f'(--cfg-options load_from={filename} starts from its weights).')
    data = config_differences(old, cfg, ['train_dataloader'])
    if data:
        raise ValueError(
            f"{where}: the config's training data differs from the checkpoint's:\n"
            f'{_listing(data)}\nResuming replays the data up to the checkpoint as it was. '
            'Resume with the data settings the checkpoint was trained with, or start a new run '
            f'in another --work-dir (--cfg-options load_from={filename}).')
    schedule = config_differences(old, cfg, ['optim_wrapper', 'param_scheduler'])
    if schedule and not new_schedule:
        raise ValueError(
            f"{where}: the config's optimizer / schedule differs from the checkpoint's:\n"
            f"{_listing(schedule)}\nResuming restores the checkpoint's optimizer and schedule "
            'state, which would silently ignore these changes. Pass --resume-with-new-schedule '
            'to apply them from the resumed iteration on, or resume without the changes.')
    if schedule:
        print_log(f'{where}: --resume-with-new-schedule: the optimizer and param schedulers '
                  f'are rebuilt from the config at the resumed iteration:\n{_listing(schedule)}',
                  logger='current')
    return schedule


def check_resume_weights(runner, filename, checkpoint):
    """Refuse ``--resume`` before any weight is loaded when the checkpoint's state dict does
    not fit the Runner's model (mmengine loads it non-strictly, and the optimizer state then
    fails at the first step)."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    raise_on_mismatch(
        model.state_dict(), checkpoint_state_dict(checkpoint, filename), f'--resume: {filename}',
        type(model).__name__, hint='Resume with the config the checkpoint was trained with, or '
        'start a new run in another --work-dir.')
