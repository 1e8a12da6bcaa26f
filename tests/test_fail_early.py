"""Fail early, clearly, and lose nothing (issue 14): NaN / inf losses, checkpoints that do not
fit or cannot be read, atomic saves, --resume without a checkpoint, misspelled hook keys, and
--help of every tool."""
import errno
import glob
import json
import os
import os.path as osp
import re
import stat
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tests.conftest import REPO, run_tool
from tests.test_custom_dataset import custom_config, make_data
from tests.test_tools import write_config

CLASSES = "('background', 'sky', 'grass')"


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp('custom'), ('background', 'sky', 'grass'))


# ---- NaN / inf losses ----

def _toy_runner(work_dir, bad_iterations, max_skips):
    """An mmengine Runner on a BN + Linear model whose inputs are NaN at ``bad_iterations``
    (1-based, batch 2, no shuffling), with NonFiniteLossHook(max_skips) and a checkpoint every
    iteration."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import mmseg_ext.engine.hooks  # noqa: F401  (registers the hook)

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.bn, self.fc = nn.BatchNorm1d(2), nn.Linear(2, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.fc(self.bn(inputs))
            return dict(loss_mse=(out ** 2).mean()) if mode == 'loss' else out

    data = [dict(inputs=torch.tensor([float(i), 1.0 - i])) for i in range(12)]
    for it in bad_iterations:
        for j in (2 * it - 2, 2 * it - 1):
            data[j] = dict(inputs=torch.full((2, ), float('nan')))
    torch.manual_seed(0)
    return Runner(
        model=Toy(), work_dir=str(work_dir), experiment_name=osp.basename(work_dir),
        train_dataloader=dict(dataset=data, batch_size=2, collate_fn=dict(type='default_collate'),
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=5),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1)),
        custom_hooks=[dict(type='NonFiniteLossHook', max_skips=max_skips)],
        default_scope='mmengine', log_level='WARNING')


def _state(path):
    return torch.load(path, map_location='cpu')['state_dict']


def test_nan_loss_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path):
    from mmseg_ext.engine.hooks import NonFiniteLossError
    runner = _toy_runner(tmp_path / 'stop', bad_iterations=[3], max_skips=0)
    with pytest.raises(NonFiniteLossError) as error:
        runner.train()
    message = str(error.value)
    assert 'Non-finite loss at iteration 3' in message and 'loss_mse=nan' in message
    assert f'the last good checkpoint is {tmp_path / "stop" / "iter_2.pth"}' in message
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / 'stop/iter_*.pth'))) == \
        ['iter_1.pth', 'iter_2.pth']
    assert all(torch.isfinite(v).all() for v in _state(tmp_path / 'stop/iter_2.pth').values())


def test_skip_mode_skips_n_bad_steps_then_stops(tmp_path):
    from mmseg_ext.engine.hooks import NonFiniteLossError
    work = tmp_path / 'skip'
    _toy_runner(work, bad_iterations=[3], max_skips=1).train()
    before, skipped = _state(work / 'iter_2.pth'), _state(work / 'iter_3.pth')
    for key in before:  # the skipped step changed nothing, BN statistics included
        assert torch.equal(before[key], skipped[key]), key
    assert all(torch.isfinite(v).all() for v in _state(work / 'iter_5.pth').values())
    with pytest.raises(NonFiniteLossError, match='at iteration 4'):
        _toy_runner(tmp_path / 'twice', bad_iterations=[3, 4], max_skips=1).train()


def test_non_finite_weights_are_never_saved():
    from mmseg_ext.engine.hooks import NonFiniteLossError, NonFiniteLossHook
    checkpoint = dict(state_dict=dict(ok=torch.zeros(2), bad=torch.tensor([1.0, float('inf')])))
    with pytest.raises(NonFiniteLossError, match=r'1 weights are not finite \(bad\)'):
        NonFiniteLossHook().before_save_checkpoint(SimpleNamespace(iter=4), checkpoint)


def test_huge_learning_rate_stops_training(tmp_path, toy_ade20k):
    """The issue's case: lr 1e6 on the toy config. Training stops at iteration 2 (the gradients
    overflow one step before the loss), names the loss terms, keeps iter_1.pth as the last
    checkpoint and exits non-zero."""
    cfg = write_config(tmp_path, toy_ade20k)
    work = tmp_path / 'w'
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(work), '--cfg-options',
                    'optim_wrapper.optimizer.lr=1e6', 'default_hooks.checkpoint.interval=1',
                    check=False)
    assert proc.returncode != 0
    assert re.search(r'NonFiniteLossError: Non-finite gradients at iteration 2 \(epoch 1\): '
                     r'loss=[\d.e+]+, decode.loss_ce=', proc.stderr), proc.stderr[-3000:]
    assert sorted(p.name for p in work.glob('*.pth')) == ['iter_1.pth']
    assert (work / 'last_checkpoint').read_text().endswith('iter_1.pth')


# ---- checkpoints ----

@pytest.mark.parametrize('umask,mode', [(0o022, 0o644), (0o007, 0o660)])
def test_atomic_save_keeps_the_umask_permissions(tmp_path, umask, mode):
    from mmseg_ext.compat.checkpoint import _atomic_save_checkpoint
    save = _atomic_save_checkpoint(None)
    old = os.umask(umask)
    try:
        save(dict(a=torch.zeros(1)), str(tmp_path / 'iter_1.pth'))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'iter_1.pth').st_mode) == mode
    assert os.listdir(tmp_path) == ['iter_1.pth']


def test_temporary_files_of_killed_saves_are_removed_at_the_next_start(
        tmp_path, small_data, monkeypatch):
    import mmseg_ext.apis.runner as launch
    from mmseg_ext.apis import load_config, prepare_config
    work = tmp_path / 'work'
    work.mkdir()
    for name in ('.tmp-3f2a.pth', '.tmp-91bc.pth', 'iter_1.pth'):
        (work / name).write_bytes(b'x')
    messages = []
    monkeypatch.setattr(launch, 'print_log', lambda msg, **kwargs: messages.append(msg))
    cfg = load_config(custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES))
    cfg.work_dir = str(work)
    prepare_config(cfg, 'train')
    assert os.listdir(work) == ['iter_1.pth']
    assert any('.tmp-3f2a.pth, left by an interrupted checkpoint save' in m for m in messages)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _torch_writer_enospc(obj, f, *args, **kwargs):
    """torch.save on a full disk: the writer's RuntimeError, the OSError chained."""
    f.write(b'PK partial')
    try:
        _enospc()
    except OSError as error:
        raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs '
                           '0') from error


@pytest.mark.parametrize('failing_save', [_enospc, _torch_writer_enospc])
def test_a_full_disk_names_the_checkpoint(tmp_path, monkeypatch, failing_save):
    """The error says 'no space left on device' and names the file; the previous checkpoint
    and no temporary file remain."""
    from mmseg_ext.compat.checkpoint import _atomic_save_checkpoint
    target = tmp_path / 'iter_2.pth'
    target.write_bytes(b'previous')
    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OSError) as error:
        _atomic_save_checkpoint(None)(dict(a=torch.zeros(1)), str(target))
    assert error.value.errno == errno.ENOSPC
    assert 'no space left on device' in str(error.value) and str(target) in str(error.value)
    assert os.listdir(tmp_path) == ['iter_2.pth'] and target.read_bytes() == b'previous'


def test_ctrl_c_while_the_config_is_dumped_stays_a_keyboard_interrupt(tmp_path, monkeypatch):
    """mmengine formats the dump with yapf inside a bare except: Ctrl-C there became
    'SyntaxError: Failed to format the config file'. Real formatting errors keep that error."""
    import mmengine.config.config as config_module
    from mmengine.config import Config

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(config_module, 'FormatCode', interrupted)
    with pytest.raises(KeyboardInterrupt):
        Config(dict(a=1)).dump(str(tmp_path / 'cfg.py'))
    monkeypatch.setattr(config_module, 'FormatCode', _enospc)
    with pytest.raises(SyntaxError, match='Failed to format the config file'):
        Config(dict(a=1)).dump(str(tmp_path / 'cfg.py'))


@pytest.mark.parametrize('mode,option,message', [
    ('train', {'env_cfg.cudnn_benchmak': True},
     "env_cfg: unknown keys 'cudnn_benchmak' (did you mean 'cudnn_benchmark'?)"),
    ('train', {'env_cfg.mp_cfg.opencv_num_thread': 0},
     "env_cfg.mp_cfg: unknown keys 'opencv_num_thread' (did you mean 'opencv_num_threads'?)"),
    ('train', {'val_evaluator.iou_metric': ['mDice']},
     "val_evaluator: unknown keys 'iou_metric' (did you mean 'iou_metrics'?). IoUMetric takes:"),
    ('test', {'test_evaluator.nan_to_nums': 0},
     "test_evaluator: unknown keys 'nan_to_nums' (did you mean 'nan_to_num'?)"),
])
def test_misspelled_env_and_evaluator_keys_fail_before_training(tmp_path, small_data, mode,
                                                                option, message):
    from mmseg_ext.apis import load_config, prepare_config
    cfg = load_config(custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES),
                      option)
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(KeyError, match=re.escape(message)):
        prepare_config(cfg, mode)


def test_unreadable_checkpoints_are_named(tmp_path):
    import mmseg_ext  # noqa: F401  (makes checkpoint errors name the file)
    from mmseg_ext.compat.checkpoint import CheckpointReadError
    from mmseg_ext.utils import check_checkpoint_matches
    module = nn.Linear(2, 2)
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=module.state_dict()), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    for path, why in ((truncated, 'truncated'), (text, 'not a checkpoint at all'),
                      (empty, 'the file is empty')):
        with pytest.raises(CheckpointReadError, match=re.escape(str(path)) + '.*' + why):
            check_checkpoint_matches(module, str(path))
    tensor = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(TypeError, match=re.escape(str(tensor)) + ' holds a Tensor'):
        check_checkpoint_matches(module, str(tensor))


def _model_checkpoint(cfg_path, path):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from mmseg_ext.apis import load_config
    cfg = load_config(cfg_path)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmseg')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict(), meta={}), path)
    return str(path)


def test_infer_refuses_other_checkpoints_and_shows_progress(tmp_path, small_data, capsys):
    """infer.py uses test.py's check; a matching checkpoint runs with a progress bar."""
    from tools import infer as tool
    cfg = custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES,
                        pretrained='None')
    images = osp.join(small_data, 'img/val')
    ade = osp.join(REPO, 'configs/segformer/mit-b0_ade20k.py')
    other = _model_checkpoint(cfg, tmp_path / 'three_classes.pth')
    with pytest.raises(KeyError) as error:
        tool.main([ade, other, images, '--out-dir', str(tmp_path / 'x')])
    assert (f'{other} does not match EncoderDecoder' in str(error.value) and
            'decode_head.conv_seg.weight: checkpoint (3, 256, 1, 1) vs model (150, 256, 1, 1)'
            in str(error.value))
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(open(other, 'rb').read()[:4096])
    with pytest.raises(RuntimeError, match=re.escape(str(truncated)) + '.*truncated'):
        tool.main([cfg, str(truncated), images, '--out-dir', str(tmp_path / 'x')])
    capsys.readouterr()
    tool.main([cfg, other, images, '--out-dir', str(tmp_path / 'out')])
    out = capsys.readouterr().out
    assert '2/2' in out and 'ETA' in out
    assert len(os.listdir(tmp_path / 'out/label_maps')) == 2


# ---- run set-up ----

def test_resume_without_checkpoint_says_so(tmp_path, small_data, monkeypatch):
    import mmseg_ext.apis.runner as launch
    from mmseg_ext.apis import load_config, prepare_config
    messages = []
    monkeypatch.setattr(launch, 'print_log', lambda msg, **kwargs: messages.append(msg))
    cfg = load_config(custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES))
    cfg.work_dir, cfg.resume = str(tmp_path / 'empty'), True
    prepare_config(cfg, 'train')
    assert cfg.resume is False
    assert f'--resume: no checkpoint to resume from in {tmp_path / "empty"}' in messages[-1]
    assert 'training starts from scratch' in messages[-1]


def test_misspelled_checkpoint_hook_key_fails_before_training(tmp_path, small_data):
    from mmseg_ext.apis import build_runner, load_config
    cfg = load_config(custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES,
                                    pretrained='None'),
                      {'default_hooks.checkpoint.intervall': 100})
    cfg.work_dir = str(tmp_path / 'work')
    with pytest.raises(KeyError, match="default_hooks.checkpoint: unknown keys 'intervall' "
                                       r"\(did you mean 'interval'\?\)"):
        build_runner(cfg)


def test_a_shortened_run_warns_that_its_schedule_is_cut_short(tmp_path, small_data,
                                                               monkeypatch):
    import mmseg_ext.apis.runner as launch
    from mmseg_ext.apis import load_config, prepare_config
    messages = []
    monkeypatch.setattr(launch, 'print_log', lambda msg, **kwargs: messages.append(msg))
    path = custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES)
    for options, warned in (({}, False), ({'train_cfg.max_iters': 20000}, True),
                            ({'train_cfg.max_iters': 20000, 'param_scheduler.1.end': 20001},
                             False)):
        messages.clear()
        cfg = load_config(path, options)
        cfg.work_dir = str(tmp_path / 'work')
        prepare_config(cfg, 'train')
        cut = [m for m in messages if 'cut short' in m]
        assert bool(cut) == warned, (options, messages)
    messages.clear()
    prepare_config(load_config(path, {'train_cfg.max_iters': 20000}), 'train')
    assert ('param_scheduler[1] (PolyLR) runs to iter 160001, but training stops at '
            'train_cfg.max_iters=20000: its schedule is cut short. If you shortened the training, '
            'shorten the schedule too, e.g. --cfg-options param_scheduler.1.end=20001'
            ) in messages


TOOLS = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'tools/**/*.py'),
                                                       recursive=True))


@pytest.mark.parametrize('tool', TOOLS)
def test_help_is_quick_and_complete(tool):
    """--help imports nothing heavy before argparse (so it prints in well under 2 s), and
    every option has help text."""
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tests/helpers/help_check.py'), tool],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=REPO))
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report['parsers'] == 1 and 'usage:' in proc.stdout, proc.stderr[-2000:]
    assert report['heavy'] == [] and report['no_help'] == [], report
