"""No tool executes code from a checkpoint: crafted payloads replayed through the loader,
tools/train.py --resume, test.py, infer.py, the ONNX exporter and every weight converter.

A payload that ran would create its marker file; every tool must refuse the file instead, with
an error that names it."""
import io
import os
import os.path as osp
import pickle
import runpy
import shutil
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from mmseg_ext.compat.checkpoint import (
    CheckpointReadError,
    load_checkpoint_file,
    parse_config_text,
)
from tests.conftest import run_tool
from tests.helpers.crafted_checkpoints import (
    config_text_payload,
    getattr_gadget,
    ordered_dict_gadget,
)
from tests.test_tools import write_config


def _blob(obj):
    raw = io.BytesIO()
    torch.save(obj, raw)
    raw.seek(0)
    return raw


def test_getattr_admits_only_history_buffer_statistics(tmp_path):
    marker = tmp_path / 'pwned'
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        torch.load(_blob({'meta': getattr_gadget(marker)}), weights_only=True)
    assert not marker.exists()
    # What mmengine needs still loads: HistoryBuffer's methods, pickled as getattr(cls, name).
    loaded = torch.load(_blob({'m': HistoryBuffer.mean}), weights_only=True)
    assert loaded['m'] is HistoryBuffer.mean


def test_planted_attributes_are_refused_naming_the_file(tmp_path):
    marker, path = tmp_path / 'pwned', str(tmp_path / 'crafted.pth')
    torch.save({'state_dict': {}, 'meta': {'note': ordered_dict_gadget(marker)}}, path)
    with pytest.raises(CheckpointReadError, match=r"crafted\.pth.*\['meta'\]\['note'\].*"
                                                  r"__reduce_ex__"):
        CheckpointLoader.load_checkpoint(path, 'cpu')
    with pytest.raises(pickle.UnpicklingError, match='__reduce_ex__'):
        load_checkpoint_file(path)
    assert not marker.exists()


def test_real_state_still_loads(tmp_path):
    """A module state dict (an OrderedDict with ``_metadata``), message-hub buffers, numpy
    values: what mmengine writes loads unchanged."""
    buffer = HistoryBuffer()
    buffer.update(np.float64(0.25))
    state = torch.nn.Sequential(torch.nn.Linear(2, 2)).state_dict()
    path = str(tmp_path / 'real.pth')
    torch.save({'state_dict': state, 'meta': {'seed': np.int64(3)},
                'message_hub': {'log_scalars': {'loss': buffer}}}, path)
    loaded = CheckpointLoader.load_checkpoint(path, 'cpu')
    assert loaded['state_dict']._metadata == state._metadata
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 0.25


def test_config_text_is_read_as_data_never_run(tmp_path):
    cfg = Config(dict(model=dict(type='EncoderDecoder', pretrained=None, channels=[1, 2]),
                      gpu_ids=range(0, 2), crop=(512, 512), lr=-6e-05, flag=True))
    assert parse_config_text(cfg.pretty_text) == {
        'model': {'type': 'EncoderDecoder', 'pretrained': None, 'channels': [1, 2]},
        'gpu_ids': range(0, 2), 'crop': (512, 512), 'lr': -6e-05, 'flag': True}
    marker = tmp_path / 'pwned'
    with pytest.raises(ValueError, match='line 1'):
        parse_config_text(config_text_payload(marker))
    with pytest.raises(ValueError, match='line 1'):
        parse_config_text('model = __import__("os").getcwd()')
    assert not marker.exists()


@pytest.fixture(scope='module')
def trained(tmp_path_factory, toy_ade20k):
    """A real 3-iteration work dir, its config, and crafted copies of its checkpoint."""
    tmp = tmp_path_factory.mktemp('security')
    cfg = write_config(tmp, toy_ade20k, max_iters=3)
    work = str(tmp / 'work')
    run_tool('tools/train.py', cfg, '--work-dir', work)
    return cfg, work, osp.join(work, 'iter_3.pth')


def _crafted(real, dst, marker, kind):
    ckpt = torch.load(real, map_location='cpu')
    if kind == 'config':
        ckpt['meta']['config'] = config_text_payload(marker)
    else:  # mmengine deep-copies message-hub runtime info on resume
        ckpt['message_hub']['runtime_info']['note'] = getattr_gadget(marker)
        ckpt['message_hub']['resumed_keys']['note'] = True
        ckpt['meta']['note'] = getattr_gadget(marker)
    torch.save(ckpt, dst)
    return dst


def _resume_work_dir(tmp_path, real, marker, kind):
    work = tmp_path / f'resume-{kind}'
    work.mkdir()
    ckpt = _crafted(real, str(work / 'iter_3.pth'), marker, kind)
    (work / 'last_checkpoint').write_text(ckpt)
    return str(work)


@pytest.mark.parametrize('kind', ['config', 'getattr'])
def test_resume_refuses_crafted_checkpoints(tmp_path, trained, kind):
    cfg, _, real = trained
    marker = tmp_path / 'pwned'
    work = _resume_work_dir(tmp_path, real, marker, kind)
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                    '--cfg-options', 'train_cfg.max_iters=4', check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'crafted' in out and 'iter_3.pth' in out, out[-3000:]
    assert not marker.exists()


def test_resume_of_a_real_checkpoint_still_works(tmp_path, trained):
    cfg, work, _ = trained
    copy = str(tmp_path / 'copy')
    shutil.copytree(work, copy)
    with open(osp.join(copy, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(copy, 'iter_3.pth'))
    proc = run_tool('tools/train.py', cfg, '--work-dir', copy, '--resume',
                    '--cfg-options', 'train_cfg.max_iters=4')
    assert 'resumed epoch: 0, iter: 3' in proc.stdout + proc.stderr


@pytest.mark.parametrize('tool', ['test', 'infer', 'export'])
def test_tools_refuse_crafted_checkpoints(tmp_path, trained, toy_ade20k, tool):
    cfg, _, real = trained
    marker = tmp_path / 'pwned'
    ckpt = _crafted(real, str(tmp_path / 'crafted.pth'), marker, 'getattr')
    image = osp.join(toy_ade20k, 'images', 'validation')
    args = {'test': ('tools/test.py', cfg, ckpt),
            'infer': ('tools/infer.py', cfg, ckpt, image, '--out-dir', str(tmp_path / 'out')),
            'export': ('tools/deployment/pytorch2onnx.py', cfg, ckpt, '--out',
                       str(tmp_path / 'm.onnx'))}[tool]
    proc = run_tool(*args, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'crafted' in out and 'crafted.pth' in out, out[-3000:]
    assert not marker.exists()


@pytest.mark.parametrize('converter, extra', [
    ('segformer_weights.py', ['--from', 'official']),
    ('panoptic_segformer_weights.py', []),
    ('ls_transformer_weights.py', []),
])
def test_converters_refuse_crafted_checkpoints(tmp_path, monkeypatch, converter, extra):
    marker = tmp_path / 'pwned'
    src = str(tmp_path / 'crafted.pth')
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': getattr_gadget(marker)}, src)
    monkeypatch.setattr(sys, 'argv', [converter, src, str(tmp_path / 'out.pth'), *extra])
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        runpy.run_module(f'tools.model_converters.{converter[:-3]}', run_name='__main__')
    assert not marker.exists() and not os.path.exists(tmp_path / 'out.pth')
