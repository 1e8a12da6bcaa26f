"""Training-run reliability: --resume with a changed config (refused, or applied with
--resume-with-new-schedule), one run per work dir (lock file), temporary files of live runs."""
import os
import os.path as osp
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import REPO, run_tool
from tests.test_custom_dataset import custom_config, make_data
from tests.test_tools import write_config

CLASSES = "('background', 'sky', 'grass')"


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp('custom'), ('background', 'sky', 'grass'))


def _config(tmp_path, small_data, options=None):
    from mmseg_ext.apis import load_config
    cfg = load_config(custom_config(tmp_path, data_root=repr(small_data), classes=CLASSES,
                                    pretrained='None'), options)
    cfg.work_dir = str(tmp_path / 'work')
    return cfg


def _trained_checkpoint(tmp_path, small_data, options=None, state_dict=None, with_cfg=True):
    """A checkpoint in tmp_path/work as a run with ``options`` leaves it: meta['cfg'] is that
    run's config as the Runner dumps it (after prepare_config), last_checkpoint names it."""
    from mmseg_ext.apis import prepare_config
    first = _config(tmp_path, small_data, options)
    first.work_dir = str(tmp_path / 'first')
    prepare_config(first, 'train')
    meta = dict(iter=2, epoch=0, **(dict(cfg=first.pretty_text) if with_cfg else {}))
    work = tmp_path / 'work'
    work.mkdir(exist_ok=True)
    path = work / 'iter_2.pth'
    torch.save(dict(meta=meta, state_dict=state_dict or {}), path)
    (work / 'last_checkpoint').write_text(str(path))
    return str(path)


def _resume(tmp_path, small_data, options=None, new_schedule=False):
    from mmseg_ext.apis import prepare_config
    cfg = _config(tmp_path, small_data, options)
    cfg.resume = True
    return cfg, prepare_config(cfg, 'train', new_schedule)


def test_an_unchanged_config_resumes(tmp_path, small_data):
    """Loader settings and the training length may change, and a checkpoint of a CPU-distributed
    run (SyncBN written as BN) fits; nothing is refused or rebuilt."""
    path = _trained_checkpoint(tmp_path, small_data, {'model.decode_head.norm_cfg.type': 'BN'})
    cfg, (filename, checkpoint) = _resume(
        tmp_path, small_data, {'train_dataloader.num_workers': 0, 'train_cfg.max_iters': 9})
    assert filename == path and checkpoint['meta']['iter'] == 2
    assert not any(h['type'] == 'NewScheduleOnResumeHook' for h in cfg.custom_hooks)


def test_another_model_is_refused_before_training(tmp_path, small_data):
    """A B1 config resumed from a B0 checkpoint (180 size mismatches, then an AdamW crash on
    the old code) is refused, listing the first differing keys."""
    _trained_checkpoint(tmp_path, small_data)
    b1 = {'model.backbone.arch': 'b1', 'model.decode_head.in_channels': [64, 128, 320, 512]}
    with pytest.raises(ValueError) as error:
        _resume(tmp_path, small_data, b1, new_schedule=True)
    message = str(error.value)
    assert "model.backbone.arch: checkpoint 'b0', config 'b1'" in message
    assert 'model.decode_head.in_channels.0: checkpoint 32, config 64' in message
    assert 'another --work-dir' in message and 'load_from=' in message


def test_other_training_data_is_refused(tmp_path, small_data):
    _trained_checkpoint(tmp_path, small_data)
    with pytest.raises(ValueError, match=r'training data differs.*\n  train_dataloader\.'
                                         r'batch_size: checkpoint 2, config 3'):
        _resume(tmp_path, small_data, {'train_dataloader.batch_size': 3}, new_schedule=True)


def test_a_new_schedule_is_refused_or_applied_and_the_warning_follows_what_runs(
        tmp_path, small_data, monkeypatch):
    """The checkpoint's run used the 160k schedule cut to 20000 iterations; the resumed config
    fixes param_scheduler.1.end and raises the lr. Without the option: refused, saying how
    (and no warning about a schedule that will not run). With it: the rebuild hook is added
    and the cut-short warning, computed from the schedule that now runs, stays quiet."""
    import mmseg_ext.apis.runner as launch
    messages = []
    monkeypatch.setattr(launch, 'print_log', lambda msg, **kwargs: messages.append(msg))
    _trained_checkpoint(tmp_path, small_data, {'train_cfg.max_iters': 20000})
    messages.clear()
    new = {'train_cfg.max_iters': 20000, 'param_scheduler.1.end': 20001,
           'optim_wrapper.optimizer.lr': 1e-3}
    with pytest.raises(ValueError) as error:
        _resume(tmp_path, small_data, new)
    assert 'param_scheduler.1.end: checkpoint 160001, config 20001' in str(error.value)
    assert 'optim_wrapper.optimizer.lr: checkpoint 6e-05, config 0.001' in str(error.value)
    assert '--resume-with-new-schedule' in str(error.value)
    assert not [m for m in messages if 'cut short' in m]
    cfg, _ = _resume(tmp_path, small_data, new, new_schedule=True)
    assert cfg.custom_hooks[-1] == dict(type='NewScheduleOnResumeHook')
    assert not [m for m in messages if 'cut short' in m]
    messages.clear()
    _resume(tmp_path, small_data, {'train_cfg.max_iters': 20000})  # the checkpoint's schedule
    assert [m for m in messages if 'cut short' in m]


def test_weights_that_do_not_fit_are_refused_before_any_optimizer_step(tmp_path, small_data):
    """A checkpoint without a config (nothing to compare) whose head has another shape."""
    from mmseg_ext.apis import build_runner
    head = {'decode_head.conv_seg.weight': torch.zeros(5, 256, 1, 1)}
    path = _trained_checkpoint(tmp_path, small_data, state_dict=head, with_cfg=False)
    cfg = _config(tmp_path, small_data)
    cfg.resume = True
    with pytest.raises(KeyError) as error:
        build_runner(cfg)
    assert f'--resume: {path} does not match EncoderDecoder' in str(error.value)
    assert ('decode_head.conv_seg.weight: checkpoint (5, 256, 1, 1) vs model (3, 256, 1, 1)'
            in str(error.value))


def test_resume_with_new_schedule_end_to_end(tmp_path, toy_ade20k):
    """tools/train.py: 2 iterations; --resume with a new lr and warm-up end is refused (the
    lock is released after that error); with --resume-with-new-schedule iteration 3 runs at
    the new schedule's lr, and the saved config shows what ran. LinearLR (mmengine): factor
    = start + (1 - start) * t / (end - begin - 1); the toy config's start_factor is 1e-3."""
    cfg = write_config(tmp_path, toy_ade20k, max_iters=2)  # saves iter_2.pth (the last)
    work = str(tmp_path / 'w')
    run_tool('tools/train.py', cfg, '--work-dir', work)
    new = ['--cfg-options', 'train_cfg.max_iters=3', 'optim_wrapper.optimizer.lr=0.01',
           'param_scheduler.0.end=11']
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume', *new, check=False)
    assert proc.returncode != 0
    assert 'optim_wrapper.optimizer.lr: checkpoint 0.001, config 0.01' in proc.stderr
    assert 'param_scheduler.0.end: checkpoint 50, config 11' in proc.stderr
    assert not osp.exists(osp.join(work, '.train.lock'))
    proc = run_tool('tools/train.py', cfg, '--work-dir', work, '--resume',
                    '--resume-with-new-schedule', *new)
    log = proc.stdout + proc.stderr
    lr = re.search(r'Iter\(train\) \[3/3\] .* lr: (\S+)', log)
    assert lr, log[-3000:]
    lr = lr[1]
    assert float(lr) == pytest.approx(0.01 * (1e-3 + (1 - 1e-3) * 2 / 10), rel=1e-4)
    saved = open(osp.join(work, 'tiny.py')).read()
    assert "lr=0.01" in saved and 'NewScheduleOnResumeHook' in saved


# ---- one run per work dir ----

HOLDER = textwrap.dedent('''
    import sys
    from mmseg_ext.utils.work_dir_lock import acquire_work_dir_lock
    acquire_work_dir_lock(sys.argv[1])
    print('locked', flush=True)
    sys.stdin.read()
    ''')


def _dead_pid():
    proc = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True)
    return int(proc.stdout)


def test_a_second_run_in_a_work_dir_is_refused_and_a_dead_runs_lock_taken_over(
        tmp_path, toy_ade20k):
    """Run A (a process holding the lock, synchronised by its output, no timing) and run B,
    tools/train.py in the same work dir: B stops before touching anything, naming the lock file,
    A's pid and what to do; A's temporary checkpoint file stays. After A ends the lock is gone;
    a lock of a dead process is taken over, and dead runs' temporary files are removed."""
    import socket

    from mmseg_ext.utils.work_dir_lock import acquire_work_dir_lock
    work = tmp_path / 'w'
    work.mkdir()
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(work)], cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=REPO), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'locked\n'
        a_file = work / f'.tmp-{holder.pid}-0a1b.pth'
        dead = work / f'.tmp-{_dead_pid()}-2c3d.pth'
        a_file.write_bytes(b'x')
        dead.write_bytes(b'x')
        proc = run_tool('tools/train.py', write_config(tmp_path, toy_ade20k), '--work-dir',
                        str(work), check=False)
        assert proc.returncode != 0
        assert f'lock file {work / ".train.lock"}' in proc.stderr
        assert f'process {holder.pid} on {socket.gethostname()}' in proc.stderr
        assert 'Train with another --work-dir' in proc.stderr
        assert a_file.exists() and dead.exists()
    finally:
        holder.communicate('')
    assert holder.returncode == 0 and not (work / '.train.lock').exists()

    (work / '.train.lock').write_text(f'{{"pid": {_dead_pid()}, "host": "{socket.gethostname()}"}}')
    messages = []
    acquire_work_dir_lock(str(work), log=messages.append)
    assert 'taking over the lock of process' in messages[0]
    assert f'"pid": {os.getpid()}' in (work / '.train.lock').read_text()

    from mmseg_ext.compat.checkpoint import remove_stale_temp_checkpoints
    holder = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'],
                              stdin=subprocess.PIPE, text=True)
    try:
        live = work / f'.tmp-{holder.pid}-4e5f.pth'
        live.write_bytes(b'x')
        assert remove_stale_temp_checkpoints(str(work)) == [str(a_file), str(dead)]  # A ended
        assert live.exists()
    finally:
        holder.communicate('')
