"""Checkpoint loading and saving on torch >= 2.6 (REFERENCE section 1).

torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7 calls ``torch.load`` without
the argument, so ``--resume`` fails on the non-tensor objects its checkpoints hold. We allow-list
exactly those types instead of switching the safety off.
"""
import codecs
import collections
import glob
import os
import os.path as osp
import uuid
import zipfile

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer


def _numpy_globals():
    """numpy's pickling helpers under both their numpy 1.x and 2.x module paths.

    A checkpoint written under numpy 1.x names ``numpy.core.multiarray``; numpy 2.x names
    ``numpy._core.multiarray``. Both map to the same objects of the running numpy.
    """
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    found = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        found += [(multiarray._reconstruct, f'{module}._reconstruct'),
                  (multiarray.scalar, f'{module}.scalar')]
    found += [np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes in numpy.dtypes (e.g. Float64DType).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


def allow_mmengine_checkpoint_types():
    """Allow-list the types an mmengine Runner checkpoint holds (measured with pickletools)."""
    torch.serialization.add_safe_globals([
        collections.OrderedDict,
        HistoryBuffer,
        codecs.encode,
        getattr,  # HistoryBuffer pickles its statistic methods via getattr(cls, name)
        *_numpy_globals(),
    ])


TEMP_PREFIX = '.tmp-'


def save_checkpoint_atomic(checkpoint, filename):
    """``torch.save`` to a temporary file next to ``filename``, synced, then renamed over it: an
    interrupted save never leaves a truncated file, and the file gets the umask's permissions
    (a plain exclusive open, not mkstemp's 0600). Runner checkpoints and the converters in
    tools/model_converters/ are written this way."""
    directory = osp.dirname(osp.abspath(filename))
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'{TEMP_PREFIX}{uuid.uuid4().hex}.pth')
    try:
        with open(tmp, 'xb') as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def _atomic_save_checkpoint(original):

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        if '://' in str(filename) or file_client_args or backend_args:
            return original(checkpoint, filename, file_client_args, backend_args)
        save_checkpoint_atomic(checkpoint, filename)

    save_checkpoint.__wrapped__ = original
    return save_checkpoint


def remove_stale_temp_checkpoints(directory):
    """Delete the temporary files of saves that a killed run left in ``directory``.

    Call it when a run starts, before it saves anything; returns the removed paths.
    """
    stale = sorted(glob.glob(osp.join(glob.escape(directory), f'{TEMP_PREFIX}*.pth')))
    for path in stale:
        os.remove(path)
    return stale


def make_checkpoint_saving_atomic():
    """Route ``Runner.save_checkpoint`` through a write-to-temp-then-rename save for local paths."""
    import mmengine.runner.runner as runner_module
    if not hasattr(runner_module.save_checkpoint, '__wrapped__'):
        runner_module.save_checkpoint = _atomic_save_checkpoint(runner_module.save_checkpoint)


class CheckpointReadError(RuntimeError):
    """A checkpoint file exists but cannot be read; the message names the file and why."""


def _why_unreadable(filename, error):
    if '://' in str(filename) or not osp.isfile(filename):
        return str(error)
    if osp.getsize(filename) == 0:
        return 'the file is empty'
    if not zipfile.is_zipfile(filename):
        return ('it is not a complete zip archive, which torch.save writes: the file is truncated '
                '(an interrupted download, copy or save) or is not a checkpoint at all. '
                f'torch.load said: {error}')
    return f'torch.load failed on it: {error}'


def make_checkpoint_errors_name_the_file():
    """Make every checkpoint read through mmengine (``load_from``, ``--resume``, ``init_cfg``
    Pretrained, ``load_checkpoint``) name the file when it cannot be read."""
    from mmengine.runner.checkpoint import CheckpointLoader
    original = CheckpointLoader.load_checkpoint
    if hasattr(original, '__wrapped__'):
        return

    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        try:
            return original(filename, map_location, logger)
        except (FileNotFoundError, CheckpointReadError):
            raise
        except Exception as error:
            raise CheckpointReadError(
                f'cannot read checkpoint {filename!r}: {_why_unreadable(filename, error)}'
            ) from error

    load_checkpoint.__wrapped__ = original
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
