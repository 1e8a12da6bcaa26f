"""Checkpoint loading and saving on torch >= 2.6 (docs/compat.md).

torch >= 2.6 loads with ``weights_only=True``; mmengine 0.10.7 calls ``torch.load`` without
the argument, so ``--resume`` fails on the non-tensor objects its checkpoints hold. We allow-list
exactly those types instead of switching the safety off, narrow ``builtins.getattr`` to the one
lookup mmengine's state needs, refuse loaded objects that carry attributes no mmengine state has
(torch lets a pickle set any attribute on an ``OrderedDict``), and never execute a checkpoint's
config text.
"""
import ast
import codecs
import collections
import contextlib
import errno
import glob
import os
import os.path as osp
import pickle
import re
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


def history_buffer_statistic(owner, name):
    """What ``builtins.getattr`` may do in a checkpoint: look up one of HistoryBuffer's statistic
    methods (how pickle protocol 2 writes ``HistoryBuffer.mean``). Anything else is refused: a
    free ``getattr`` walks from any allow-listed object to arbitrary code."""
    if owner is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'refused getattr({owner!r}, {name!r}) in a checkpoint: only HistoryBuffer statistic '
        f'methods ({sorted(HistoryBuffer._statistics_methods)}) may be looked up')


def allow_mmengine_checkpoint_types():
    """Allow-list the types an mmengine Runner checkpoint holds (measured with pickletools)."""
    HistoryBuffer()  # registers the default statistic methods
    torch.serialization.add_safe_globals([
        collections.OrderedDict,
        HistoryBuffer,
        codecs.encode,
        (history_buffer_statistic, 'builtins.getattr'),
        *_numpy_globals(),
    ])


# Attributes the loaded objects may carry: a module state dict's ``_metadata`` and a
# HistoryBuffer's own fields. torch's unpickler sets any attribute on an OrderedDict (BUILD),
# which is how a crafted file plants e.g. ``__deepcopy__`` that runs later.
_HISTORY_BUFFER_FIELDS = {'max_length', '_log_history', '_count_history'}


def _check_plain(value, where):
    """Data only: containers, numbers, strings, tensors, numpy values."""
    if isinstance(value, (dict, list, tuple, set)):
        check_checkpoint_objects(value, where)
    elif not isinstance(value, (str, bytes, int, float, complex, bool, type(None), torch.Tensor,
                                torch.dtype, torch.device, torch.Size, np.ndarray, np.generic,
                                np.dtype)):
        raise pickle.UnpicklingError(f'{where}: unexpected {type(value).__name__} in a checkpoint')


def check_checkpoint_objects(obj, where='checkpoint'):
    """Refuse a loaded checkpoint whose objects carry attributes no mmengine / torch state has.

    Raises ``pickle.UnpicklingError`` naming the place (e.g. ``checkpoint['meta']``)."""
    stack = [(obj, where)]
    while stack:
        node, path = stack.pop()
        extra = getattr(node, '__dict__', None) if not isinstance(node, torch.Tensor) else None
        if isinstance(node, HistoryBuffer):
            unknown = set(vars(node)) - _HISTORY_BUFFER_FIELDS
            if unknown:
                raise pickle.UnpicklingError(
                    f'{path}: a HistoryBuffer with attributes {sorted(unknown)}, which mmengine '
                    'never writes; the checkpoint was crafted or corrupted')
            for key in _HISTORY_BUFFER_FIELDS & set(vars(node)):
                _check_plain(vars(node)[key], f'{path}.{key}')
            continue
        if extra:
            unknown = set(extra) - {'_metadata'}
            if unknown:
                raise pickle.UnpicklingError(
                    f'{path}: a {type(node).__name__} with attributes {sorted(unknown)}, which '
                    'no state dict has; the checkpoint was crafted or corrupted')
            _check_plain(extra['_metadata'], f'{path}._metadata')
        if isinstance(node, dict):
            stack += [(value, f'{path}[{key!r}]') for key, value in node.items()]
        elif isinstance(node, (list, tuple, set)):
            stack += [(value, f'{path}[{i}]') for i, value in enumerate(node)]


def load_checkpoint_file(filename, map_location='cpu', **kwargs):
    """``torch.load`` with ``weights_only=True`` and the checks above: what every tool uses."""
    checkpoint = torch.load(filename, map_location=map_location, weights_only=True, **kwargs)
    check_checkpoint_objects(checkpoint)
    return checkpoint


_LITERAL_CALLS = {'dict': dict, 'list': list, 'tuple': tuple, 'set': set, 'range': range}


def _literal(node):
    """Evaluate a config-dump expression: literals, containers, ``dict(...)`` and ``range(...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id in _LITERAL_CALLS:
        args = [_literal(arg) for arg in node.args]
        kwargs = {kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg is not None}
        if len(kwargs) != len(node.keywords):
            raise ValueError(f'line {node.lineno}: ** in a config dump')
        return _LITERAL_CALLS[node.func.id](*args, **kwargs)
    if isinstance(node, ast.List):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    try:
        return ast.literal_eval(node)
    except ValueError as error:
        raise ValueError(f'line {getattr(node, "lineno", "?")}: {ast.unparse(node)[:60]!r} is not '
                         'a literal') from error


def parse_config_text(text):
    """The dict of a config as mmengine dumps it into ``meta['config']`` (``name = value``
    lines of literals and ``dict(...)``), read without executing anything.

    Raises ``ValueError`` naming the line for anything else (imports, calls, code)."""
    result = {}
    for statement in ast.parse(text).body:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)):
            raise ValueError(f'line {statement.lineno}: {ast.unparse(statement)[:60]!r} is not '
                             '`name = value`')
        result[statement.targets[0].id] = _literal(statement.value)
    return result


def checkpoint_config(text, filename):
    """:func:`parse_config_text` of the ``meta['config']`` of checkpoint ``filename``; refuses
    the checkpoint (``pickle.UnpicklingError`` naming the file) if the text is not a plain dump."""
    try:
        return parse_config_text(text)
    except (SyntaxError, ValueError) as error:
        raise pickle.UnpicklingError(
            f"refusing to resume from {filename!r}: its meta['config'] is not a plain config "
            f'dump ({error}), and it is never executed. The checkpoint was crafted or '
            'corrupted') from error


@contextlib.contextmanager
def _config_text_read_as_data(filename):
    """Within ``Runner.resume``, ``Config.fromstring`` reads the checkpoint's config text with
    :func:`parse_config_text` instead of executing it as a ``.py`` file."""
    from mmengine.config import Config
    original = Config.__dict__['fromstring']

    def fromstring(cls, cfg_str, file_format):
        return Config(checkpoint_config(cfg_str, filename))

    Config.fromstring = classmethod(fromstring)
    try:
        yield
    finally:
        Config.fromstring = original


def make_resume_read_config_as_data():
    """``Runner.resume`` parses the checkpoint's ``meta['config']`` as data, never as code."""
    from mmengine.runner import Runner
    original = Runner.resume
    if hasattr(original, '__wrapped__'):
        return

    def resume(self, filename, *args, **kwargs):
        with _config_text_read_as_data(filename):
            return original(self, filename, *args, **kwargs)

    resume.__wrapped__ = original
    Runner.resume = resume


TEMP_PREFIX = '.tmp-'
_TEMP_NAME = re.compile(r'\.tmp-(\d+)-[0-9a-f]+\.pth')
# errno values that mean the disk (or the user's quota) is full.
_DISK_FULL = {errno.ENOSPC: 'no space left on device', errno.EDQUOT: 'disk quota exceeded'}


def _disk_full(error):
    """The errno if ``error`` or an exception chained to it says the disk is full, else None
    (torch's writer raises ``RuntimeError: ... unexpected pos`` with the OSError chained)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return error.errno
        error = error.__cause__ or error.__context__
    return None


def save_checkpoint_atomic(checkpoint, filename):
    """``torch.save`` to a temporary file next to ``filename``, synced, then renamed over it: an
    interrupted save never leaves a truncated file, and the file gets the umask's permissions
    (a plain exclusive open, not mkstemp's 0600). Runner checkpoints and the converters in
    tools/model_converters/ are written this way. The temporary name holds the process id
    (``.tmp-<pid>-<random>.pth``), so that only the files of dead processes count as stale. A
    full disk raises ``OSError(ENOSPC)`` naming ``filename``."""
    directory = osp.dirname(osp.abspath(filename))
    os.makedirs(directory, exist_ok=True)
    tmp = osp.join(directory, f'{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}.pth')
    try:
        with open(tmp, 'xb') as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException as error:
        if osp.exists(tmp):
            os.remove(tmp)
        code = _disk_full(error)
        if code is None:
            raise
        raise OSError(code, f'{_DISK_FULL[code]}: saving checkpoint {filename} failed (the '
                            f'partial file was removed). Free space in {directory} or train '
                            'with another --work-dir, then continue with --resume') from error


def _atomic_save_checkpoint(original):

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        if '://' in str(filename) or file_client_args or backend_args:
            return original(checkpoint, filename, file_client_args, backend_args)
        save_checkpoint_atomic(checkpoint, filename)

    save_checkpoint.__wrapped__ = original
    return save_checkpoint


def remove_stale_temp_checkpoints(directory):
    """Delete the temporary files that killed saves left in ``directory``: those whose process
    (the pid in the name) is gone, and those of the older ``.tmp-<random>.pth`` names. The
    caller holds the work dir's lock, so no other training run saves there. Call it when a run
    starts, before it saves anything; returns the removed paths.
    """
    from ..utils.work_dir_lock import pid_alive
    stale = []
    for path in sorted(glob.glob(osp.join(glob.escape(directory), f'{TEMP_PREFIX}*.pth'))):
        owner = _TEMP_NAME.fullmatch(osp.basename(path))
        if owner and int(owner[1]) != os.getpid() and pid_alive(int(owner[1])):
            continue  # another process on this machine is writing it
        os.remove(path)
        stale.append(path)
    return stale


def make_checkpoint_saving_atomic():
    """Route ``Runner.save_checkpoint`` through a write-to-temp-then-rename save for local paths."""
    import mmengine.runner.runner as runner_module
    if not hasattr(runner_module.save_checkpoint, '__wrapped__'):
        runner_module.save_checkpoint = _atomic_save_checkpoint(runner_module.save_checkpoint)


class CheckpointReadError(RuntimeError):
    """A checkpoint file exists but cannot be read; the message names the file and why."""


def why_unreadable(filename, error):
    """Why ``torch.load`` failed on ``filename``, in words (empty, truncated, not a checkpoint)."""
    if '://' in str(filename) or not osp.isfile(filename):
        return str(error)
    if osp.getsize(filename) == 0:
        return 'the file is empty'
    if not zipfile.is_zipfile(filename):
        return ('it is not a complete zip archive, which torch.save writes: the file is truncated '
                '(an interrupted download, copy or save) or is not a checkpoint at all. '
                f'torch.load said: {error}')
    return f'torch.load failed on it: {error}'


def make_mmengine_load_weights_only():
    """onedl-mmengine's ``_safe_torch_load`` retries a refused file with
    ``weights_only=False``, i.e. runs whatever it holds, with only a warning: route it to the
    safe load alone. Upstream mmengine calls ``torch.load`` with torch's safe default."""
    import mmengine.runner.checkpoint as module
    if hasattr(module, '_safe_torch_load'):
        def _safe_torch_load(file, map_location=None, weights_only=None):
            return torch.load(file, map_location=map_location, weights_only=True)

        module._safe_torch_load = _safe_torch_load


def make_checkpoint_errors_name_the_file():
    """Make every checkpoint read through mmengine (``load_from``, ``--resume``, ``init_cfg``
    Pretrained, ``load_checkpoint``) name the file when it cannot be read."""
    from mmengine.runner.checkpoint import CheckpointLoader
    original = CheckpointLoader.load_checkpoint
    if hasattr(original, '__wrapped__'):
        return

    def load_checkpoint(cls, filename, map_location=None, logger='current'):
        if os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '0') not in ('', '0'):
            raise CheckpointReadError(
                f'refusing to read {filename!r}: TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set, which '
                'makes torch.load run any code a checkpoint holds. Unset it; mmseg_ext loads '
                'mmengine checkpoints safely without it (docs/compat.md)')
        try:
            checkpoint = original(filename, map_location, logger)
            check_checkpoint_objects(checkpoint)
            return checkpoint
        except (FileNotFoundError, CheckpointReadError):
            raise
        except Exception as error:
            raise CheckpointReadError(
                f'cannot read checkpoint {filename!r}: {why_unreadable(filename, error)}'
            ) from error

    load_checkpoint.__wrapped__ = original
    CheckpointLoader.load_checkpoint = classmethod(load_checkpoint)
