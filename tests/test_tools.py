"""tools/train.py, tools/test.py, tools/dist_train.sh and tools/slurm_train.sh end to end on tiny
toy data (CPU): exact --resume after a crash and after SIGTERM (Slurm requeue), two torchrun
"nodes" with gloo, clear errors."""
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

from tests.conftest import REPO, run_tool

TOY_CONFIG = osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py')


def write_config(tmp_path, data_root, max_iters=6, extra='', num_workers=0):
    cfg = tmp_path / 'tiny.py'
    cfg.write_text(textwrap.dedent(f"""\
        _base_ = {TOY_CONFIG!r}
        data_root = {data_root!r}
        crop_size = (64, 64)
        model = dict(data_preprocessor=dict(size=crop_size))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='ValidateSegLabels', num_classes=150),
            dict(type='RandomCrop', crop_size=(48, 48)),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs'),
        ]
        loader = dict(num_workers={num_workers}, persistent_workers=False)
        train_dataloader = dict(batch_size=2, **loader,
                                dataset=dict(data_root=data_root, pipeline=train_pipeline))
        val_dataloader = dict(**loader, dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        train_cfg = dict(max_iters={max_iters}, val_interval=1000)
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=3))
        """) + textwrap.dedent(extra))
    return str(cfg)


def final_weights(work_dir, iteration):
    ckpt = torch.load(osp.join(work_dir, f'iter_{iteration}.pth'), map_location='cpu')
    return ckpt


def assert_same_training_state(work_a, work_b, iteration=6):
    a, b = final_weights(work_a, iteration), final_weights(work_b, iteration)
    assert a['meta']['iter'] == b['meta']['iter'] == iteration
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    for sa, sb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        assert torch.equal(sa['exp_avg'], sb['exp_avg'])


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, toy_ade20k):
    """Work dir of a 6-iteration run of write_config's config with 2 data loader workers (as
    the demo), shared by the resume tests."""
    tmp = tmp_path_factory.mktemp('uninterrupted')
    work = str(tmp / 'full')
    run_tool('tools/train.py', write_config(tmp, toy_ade20k, num_workers=2), '--work-dir', work)
    return work


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def test_resume_after_crash_matches_uninterrupted_run(tmp_path, toy_ade20k, uninterrupted):
    cfg = write_config(tmp_path, toy_ade20k, num_workers=2)
    (tmp_path / 'crash').mkdir()
    crash_cfg = write_config(tmp_path / 'crash', toy_ade20k, num_workers=2, extra="""
        custom_imports = dict(imports=['mmseg_ext', 'tests.helpers.crash_hook'])
        custom_hooks = [dict(type='RNGStateHook'), dict(type='CrashAfterIterHook', iteration=5)]
        """)
    crashed = str(tmp_path / 'crashed')
    # Crash after iteration 5: the last checkpoint is iter_3, iterations 4-5 are lost.
    proc = run_tool('tools/train.py', crash_cfg, '--work-dir', crashed, check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert osp.isfile(osp.join(crashed, 'iter_3.pth'))
    assert not osp.exists(osp.join(crashed, 'iter_6.pth'))
    proc = run_tool('tools/train.py', cfg, '--work-dir', crashed, '--resume')
    assert 'resumed epoch: 0, iter: 3' in proc.stdout + proc.stderr
    assert_same_training_state(uninterrupted, crashed)


def test_epoch_based_resume_continues_the_interrupted_epoch(tmp_path, toy_ade20k):
    """Epoch-based training (2 epochs of 4 batches, 2 non-persistent workers) that crashes
    after iteration 7, resumed from the checkpoint of iteration 6 (epoch 2, batch 2 of 4): it
    trains batches 3-4 of epoch 2 only and ends with the uninterrupted run's weights, bit for
    bit (mmengine's own loop would start epoch 2 again)."""
    epoch_based = """
        train_dataloader = dict(
            batch_size=2, **loader, sampler=dict(_delete_=True, type='DefaultSampler'),
            dataset=dict(data_root=data_root, pipeline=train_pipeline, indices=8))
        train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2, val_begin=3)
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=6))
        """
    full, resumed = str(tmp_path / 'full'), str(tmp_path / 'resumed')
    (tmp_path / 'crash').mkdir()
    cfg = write_config(tmp_path, toy_ade20k, num_workers=2, extra=epoch_based)
    crash_cfg = write_config(tmp_path / 'crash', toy_ade20k, num_workers=2, extra=epoch_based + """
        custom_imports = dict(imports=['mmseg_ext', 'tests.helpers.crash_hook'])
        custom_hooks = [dict(type='RNGStateHook'), dict(type='CrashAfterIterHook', iteration=7)]
        """)
    run_tool('tools/train.py', cfg, '--work-dir', full)
    assert run_tool('tools/train.py', crash_cfg, '--work-dir', resumed, check=False
                    ).returncode == 3
    proc = run_tool('tools/train.py', cfg, '--work-dir', resumed, '--resume')
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 6' in log
    assert 'resuming epoch 2 after its batch 2 (of 4)' in log
    assert '2/2, ' in proc.stdout and 'ETA' in proc.stdout  # the replay's progress bar
    assert re.findall(r'Iter\(train\) \[(\d+)/8\]', log) == ['7', '8']  # 2 batches trained
    assert_same_training_state(full, resumed, iteration=8)


def test_a_clean_run_with_persistent_workers_exits_quietly(tmp_path, toy_ade20k):
    """2 persistent data loader workers are still alive at exit, when multiprocessing stops them
    with SIGTERM. PreemptionHook's worker handler re-raised it, and the trainer reported
    "DataLoader worker ... is killed by signal: Terminated" (3 of 3 such runs on the old code)."""
    cfg = write_config(tmp_path, toy_ade20k, max_iters=2, num_workers=2)
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                    'train_dataloader.persistent_workers=True',
                    'val_dataloader.persistent_workers=True')
    assert 'killed by signal' not in proc.stderr and 'Traceback' not in proc.stderr, \
        proc.stderr[-3000:]


def test_epoch_based_configs_train_with_the_resumable_loop():
    from mmseg_ext.apis.runner import _use_resumable_epoch_loop
    for train_cfg in (dict(type='EpochBasedTrainLoop', max_epochs=2),
                      dict(by_epoch=True, max_epochs=2)):
        cfg = Config(dict(train_cfg=train_cfg))
        _use_resumable_epoch_loop(cfg)
        assert cfg.train_cfg == dict(type='ResumableEpochBasedTrainLoop', max_epochs=2)
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=2)))
    _use_resumable_epoch_loop(cfg)
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'


FAKE_SRUN = """#!/usr/bin/env bash
# srun on one machine: drop srun's options, run the task as Slurm task 0 of 1, in its own
# process group (the job step) so that it can be signalled as Slurm does: every process of it.
while [ $# -gt 0 ] && [ "$1" != python ]; do shift; done
echo $$ > "$SRUN_PID_FILE"
export SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 SLURM_NODELIST=localhost
export MASTER_ADDR=127.0.0.1
exec setsid "$@"
"""


def test_sigterm_checkpoints_requeues_and_resumes_exactly(tmp_path, toy_ade20k, uninterrupted):
    """Slurm preemption through tools/slurm_train.sh (srun stand-in, --launcher slurm): SIGTERM
    to the trainer and its data loader workers mid-run -> the iteration finishes, a checkpoint
    is written, exit 75, the script runs the job again with --resume, and the final weights
    equal an uninterrupted run's bit for bit."""
    cfg = write_config(tmp_path, toy_ade20k, num_workers=2)
    bin_dir, pid_file, work = tmp_path / 'bin', tmp_path / 'srun.pid', str(tmp_path / 'work')
    bin_dir.mkdir()
    (bin_dir / 'srun').write_text(FAKE_SRUN)
    (bin_dir / 'python').write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
    env.update(PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}', SRUN_PID_FILE=str(pid_file),
               PYTHONPATH=REPO + os.pathsep + env.get('PYTHONPATH', ''), PYTHONUNBUFFERED='1',
               OMP_NUM_THREADS='1', MASTER_PORT=free_port(), GPUS='1', GPUS_PER_NODE='1')
    # Checkpoints only at the end (and on the signal): the resume must use the signal's one.
    proc = subprocess.Popen(['bash', 'tools/slurm_train.sh', 'partition', 'job', cfg, work,
                             '--cfg-options', 'default_hooks.checkpoint.interval=100'],
                            cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines, signalled = [], False
    for line in proc.stdout:
        lines.append(line)
        if not signalled and 'Iter(train) [2/6]' in line:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
            signalled = True
    log = ''.join(lines)
    assert proc.wait(timeout=600) == 0, log[-4000:]
    stopped = re.search(r'SIGTERM received: saved (\S+) after iteration (\d)', log)
    assert stopped and 'exiting with code 75' in log, log[-4000:]
    assert 'training was stopped by a signal after saving a checkpoint; resuming' in log
    assert stopped.group(1) == osp.join(work, f'iter_{stopped.group(2)}.pth')
    assert f'resumed epoch: 0, iter: {stopped.group(2)}' in log
    assert_same_training_state(uninterrupted, work)


def test_dist_train_two_nodes_on_localhost(tmp_path, toy_ade20k):
    """Two torchrun "nodes" (NNODES=2, NODE_RANK 0 and 1, one process each) on this machine
    through tools/dist_train.sh: gloo on CPU, world size 2, one checkpoint without SyncBN."""
    cfg = write_config(tmp_path, toy_ade20k, max_iters=3)
    work = str(tmp_path / 'dist')
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''),
               PYTHON=sys.executable, OMP_NUM_THREADS='1', NNODES='2', PORT=free_port(),
               MASTER_ADDR='127.0.0.1')
    # Each node writes to its own file: with pipes read one after the other, a node whose
    # unread pipe fills up blocks, and the other waits for it in torchrun's 300 s exit barrier.
    log_files = [tmp_path / f'node{rank}.log' for rank in (0, 1)]
    nodes = []
    for rank, log_file in enumerate(log_files):
        with open(log_file, 'w') as out:
            nodes.append(subprocess.Popen(
                ['bash', 'tools/dist_train.sh', cfg, '1', '--work-dir', work], cwd=REPO,
                env=dict(env, NODE_RANK=str(rank)), stdout=out, stderr=subprocess.STDOUT))
    for node in nodes:
        node.wait(timeout=900)
    logs = [log_file.read_text() for log_file in log_files]
    for rank, (node, log) in enumerate(zip(nodes, logs)):
        assert node.returncode == 0, log[-4000:]
        assert f'gloo, rank {rank} of 2' in log
    assert 'Distributed training: True' in logs[0]
    ckpt = torch.load(osp.join(work, 'iter_3.pth'), map_location='cpu')
    assert ckpt['meta']['iter'] == 3
    assert not any('SyncBatchNorm' in type(v).__name__ for v in ckpt['state_dict'].values())


def test_test_tool_saves_metrics_overlays_and_label_maps(tmp_path, toy_ade20k):
    cfg = write_config(tmp_path, toy_ade20k, max_iters=3)
    work = str(tmp_path / 'w')
    run_tool('tools/train.py', cfg, '--work-dir', work)
    proc = run_tool('tools/test.py', cfg, osp.join(work, 'iter_3.pth'), '--work-dir', work,
                    '--show-dir', str(tmp_path / 'vis'), '--out', str(tmp_path / 'pred'))
    assert 'mIoU' in proc.stdout + proc.stderr
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 4
    assert len(list((tmp_path / 'vis').rglob('*.png'))) == 4


def test_missing_data_root_names_key_and_path(tmp_path):
    cfg = write_config(tmp_path, str(tmp_path / 'nowhere'))
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'), check=False)
    assert proc.returncode != 0
    assert "train_dataloader.dataset.data_root" in proc.stderr
    assert str(tmp_path / 'nowhere') in proc.stderr
    assert 'make_toy_data.py' in proc.stderr


def test_missing_config_file_is_named(tmp_path):
    proc = run_tool('tools/train.py', 'configs/segformer/nope.py', check=False)
    assert proc.returncode != 0 and "configs/segformer/nope.py" in proc.stderr


def test_unknown_type_is_named(tmp_path, toy_ade20k):
    cfg = write_config(tmp_path, toy_ade20k, extra="model = dict(backbone=dict(type='MiTT'))\n")
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'), check=False)
    assert proc.returncode != 0 and 'MiTT' in proc.stderr


def test_corrupt_image_names_the_file(tmp_path, toy_ade20k):
    import shutil
    root = tmp_path / 'data'
    shutil.copytree(toy_ade20k, root)
    bad = sorted((root / 'images/validation').glob('*.jpg'))[0]
    bad.write_bytes(b'not a jpeg')
    cfg = write_config(tmp_path, str(root), max_iters=1)
    # Training validates at its last iteration, where the corrupt image is read.
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'), check=False)
    assert proc.returncode != 0 and bad.name in proc.stderr


def test_mismatched_checkpoint_keys_are_named(tmp_path, toy_ade20k):
    """Also: tools/test.py does not need the training data (its data_root does not exist)."""
    cfg = write_config(tmp_path, toy_ade20k)
    ckpt = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'backbone.foo.weight': torch.zeros(1)}}, ckpt)
    proc = run_tool('tools/test.py', cfg, str(ckpt), '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path / "none"}',
                    check=False)
    assert proc.returncode != 0
    assert 'unexpected keys (1): backbone.foo.weight' in proc.stderr
    assert 'missing keys' in proc.stderr and 'backbone.stages.0.blocks.0.attn.kv.bias' in \
        proc.stderr


@pytest.mark.parametrize('label', [200])
def test_label_out_of_range_is_named(tmp_path, toy_ade20k, label):
    import shutil

    import numpy as np
    from PIL import Image
    root = tmp_path / 'data'
    shutil.copytree(toy_ade20k, root)
    for ann in sorted((root / 'annotations/training').glob('*.png')):
        seg = np.array(Image.open(ann))
        seg[0, 0] = label
        Image.fromarray(seg).save(ann)
    cfg = write_config(tmp_path, str(root), max_iters=2)
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'w'), check=False)
    assert proc.returncode != 0
    assert 'annotations/training' in proc.stderr and str(label - 1) in proc.stderr


def test_cityscapes_config_with_official_evaluation(tmp_path):
    """Toy Cityscapes: sliding-window test, mIoU and the cityscapesscripts evaluation (which
    needs mmseg_ext's numpy >= 2.4 fix) through tools/train.py and tools/test.py."""
    from mmseg_ext.toy_data.images import make_cityscapes
    info = make_cityscapes(str(tmp_path / 'data'), num_train=4, num_val=2, size=(64, 128), seed=0)
    root = info['data_root']
    cfg = tmp_path / 'city.py'
    cfg.write_text(textwrap.dedent(f"""\
        _base_ = {osp.join(REPO, 'configs/segformer/mit-b0_toy-cityscapes.py')!r}
        loader = dict(num_workers=0, persistent_workers=False)
        train_dataloader = dict(batch_size=2, **loader, dataset=dict(data_root={root!r}))
        val_dataloader = dict(**loader, dataset=dict(data_root={root!r}))
        test_dataloader = val_dataloader
        test_evaluator = [
            dict(type='IoUMetric', iou_metrics=['mIoU']),
            dict(type='CityscapesMetric', output_dir={str(tmp_path / 'cs')!r}),
        ]
        train_cfg = dict(max_iters=2, val_interval=1000)
        default_hooks = dict(checkpoint=dict(interval=2))
        """))
    work = str(tmp_path / 'w')
    run_tool('tools/train.py', str(cfg), '--work-dir', work)
    proc = run_tool('tools/test.py', str(cfg), osp.join(work, 'iter_2.pth'), '--work-dir', work)
    log = proc.stdout + proc.stderr
    assert 'mIoU' in log and 'averageScoreCategories' in log


def test_tta_multi_scale_flip(tmp_path, toy_ade20k):
    """--tta wraps the model in SegTTAModel and tests the config's test pipeline at every ratio of
    ``tta_ratios`` (here the toy 512x128 scale), with and without a flip."""
    cfg = write_config(tmp_path, toy_ade20k, max_iters=1, extra="tta_ratios = [0.5, 1.0]")
    work = str(tmp_path / 'w')
    run_tool('tools/train.py', cfg, '--work-dir', work, '--cfg-options',
             'default_hooks.checkpoint.interval=1')
    proc = run_tool('tools/test.py', cfg, osp.join(work, 'iter_1.pth'), '--tta',
                    '--work-dir', work)
    assert 'mIoU' in proc.stdout + proc.stderr


def test_tta_views_follow_the_configs_own_test_scale():
    from mmseg_ext.apis import enable_tta
    cfg = Config.fromfile(osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py'))
    enable_tta(cfg, 'toy')
    assert cfg.model.type == 'SegTTAModel' and cfg.model.module.type == 'EncoderDecoder'
    load, tta = cfg.test_dataloader.dataset.pipeline
    assert load.type == 'LoadImageFromFile' and tta.type == 'TestTimeAug'
    resizes, flips, annotations, pack = tta.transforms
    # the toy test scale is 512x128: int(side * ratio) for the official six ratios
    assert [(r.type, tuple(r.scale), r.size_divisor) for r in resizes] == [
        ('AlignedResize', (256, 64), 32), ('AlignedResize', (384, 96), 32),
        ('AlignedResize', (512, 128), 32), ('AlignedResize', (640, 160), 32),
        ('AlignedResize', (768, 192), 32), ('AlignedResize', (896, 224), 32)]
    assert [(f.type, f.prob, f.direction) for f in flips] == [
        ('RandomFlip', 0., 'horizontal'), ('RandomFlip', 1., 'horizontal')]
    assert [t.type for t in annotations + pack] == ['LoadAnnotations', 'PackSegInputs']
    assert annotations[0].reduce_zero_label


def test_tta_scales_a_single_side_scale():
    from mmseg_ext.apis import multi_scale_flip_pipeline
    pipeline = [dict(type='LoadImageFromFile'), dict(type='Resize', scale=512, keep_ratio=True)]
    views = multi_scale_flip_pipeline(pipeline, [0.5, 1.5])[1].transforms[0]
    assert [(v.scale, v.keep_ratio) for v in views] == [(256, True), (768, True)]


def test_tta_prefers_the_configs_own_pipeline_and_names_what_is_missing():
    from mmseg_ext.apis import enable_tta
    own = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
    cfg = Config.fromfile(osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py'))
    cfg.tta_pipeline = own
    enable_tta(cfg, 'toy')
    assert cfg.test_dataloader.dataset.pipeline == own
    settings = Config.fromfile(osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py')).to_dict()
    del settings['tta_ratios']
    cfg = Config(settings)
    with pytest.raises(KeyError, match='tta_ratios.*mine.py'):
        enable_tta(cfg, 'mine.py')
    cfg = Config.fromfile(osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py'))
    cfg.test_dataloader.dataset.pipeline = own
    with pytest.raises(ValueError, match='no AlignedResize / Resize step'):
        enable_tta(cfg, 'toy')


def test_print_config_shows_the_merged_config_with_overrides(tmp_path):
    saved = tmp_path / 'merged.py'
    proc = run_tool('tools/misc/print_config.py', 'configs/segformer/mit-b0_ade20k.py',
                    '--cfg-options', 'train_cfg.max_iters=20', '--save-path', str(saved))
    assert "train_cfg = dict(max_iters=20, type='IterBasedTrainLoop'" in proc.stdout
    assert "type='AllMLPHead'" in proc.stdout  # from the _base_ model config
    merged = Config.fromfile(str(saved))
    assert merged.train_cfg.max_iters == 20 and merged.model.decode_head.type == 'AllMLPHead'
