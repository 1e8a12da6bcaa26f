"""The torch.load allow-list: mmengine checkpoints (numpy 1.x or 2.x pickles) load with
weights_only=True; anything else is still refused. Atomic checkpoint saving."""
import io
import pickle
import zipfile

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer

import mmseg_ext  # noqa: F401  (applies the allow-list)
from mmseg_ext.compat.checkpoint import _atomic_save_checkpoint


def _runner_like_checkpoint():
    buffer = HistoryBuffer()
    buffer.update(np.float64(0.5))
    return {'meta': {'iter': 3, 'seed': np.int64(0)},
            'message_hub': {'log_scalars': {'loss': buffer}},
            'state_dict': {'w': torch.ones(2)}}


def _saved(obj, rewrite=None):
    raw = io.BytesIO()
    torch.save(obj, raw)
    if rewrite is None:
        return raw.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, \
            zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith('data.pkl'):
                data = rewrite(data)
            dst.writestr(info, data)
    return out.getvalue()


def test_runner_checkpoint_loads_with_weights_only():
    ckpt = torch.load(io.BytesIO(_saved(_runner_like_checkpoint())), weights_only=True)
    assert ckpt['meta']['iter'] == 3
    assert ckpt['message_hub']['log_scalars']['loss'].mean() == 0.5


def test_numpy_1x_module_paths_load_under_numpy_2():
    """A checkpoint pickled under numpy 1.x names numpy.core.multiarray."""
    def as_numpy1(data):
        assert pickle.DEFAULT_PROTOCOL >= 2 and b'numpy._core.multiarray' in data
        return data.replace(b'numpy._core.multiarray', b'numpy.core.multiarray')

    blob = _saved(_runner_like_checkpoint(), rewrite=as_numpy1)
    ckpt = torch.load(io.BytesIO(blob), weights_only=True)
    assert ckpt['meta']['seed'] == 0


class NotAllowed:
    pass


def test_other_types_are_still_refused():
    with pytest.raises(pickle.UnpicklingError, match='NotAllowed'):
        torch.load(io.BytesIO(_saved({'x': NotAllowed()})), weights_only=True)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    def broken_original(*args):
        raise AssertionError('local paths must not use the original')

    save = _atomic_save_checkpoint(broken_original)
    target = tmp_path / 'iter_1.pth'
    save({'w': torch.ones(1)}, str(target))
    assert torch.load(target)['w'].item() == 1
    with pytest.raises((pickle.PicklingError, AttributeError)):
        save({'bad': lambda: None}, str(tmp_path / 'iter_2.pth'))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_1.pth']
