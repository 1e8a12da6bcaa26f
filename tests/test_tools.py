"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on tiny toy data (CPU):
exact --resume after a crash, 2-process gloo training, clear errors."""
import os.path as osp
import textwrap

import pytest
import torch

from tests.conftest import REPO, run_tool

TOY_CONFIG = osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py')


def write_config(tmp_path, data_root, max_iters=6, extra=''):
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
        loader = dict(num_workers=0, persistent_workers=False)
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


def test_resume_after_crash_matches_uninterrupted_run(tmp_path, toy_ade20k):
    cfg = write_config(tmp_path, toy_ade20k)
    (tmp_path / 'crash').mkdir()
    crash_cfg = write_config(tmp_path / 'crash', toy_ade20k, extra="""
        custom_imports = dict(imports=['mmseg_ext', 'tests.helpers.crash_hook'])
        custom_hooks = [dict(type='RNGStateHook'), dict(type='CrashAfterIterHook', iteration=5)]
        """)
    full, crashed = str(tmp_path / 'full'), str(tmp_path / 'crashed')
    run_tool('tools/train.py', cfg, '--work-dir', full)
    # Crash after iteration 5: the last checkpoint is iter_3, iterations 4-5 are lost.
    proc = run_tool('tools/train.py', crash_cfg, '--work-dir', crashed, check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert osp.isfile(osp.join(crashed, 'iter_3.pth'))
    assert not osp.exists(osp.join(crashed, 'iter_6.pth'))
    proc = run_tool('tools/train.py', cfg, '--work-dir', crashed, '--resume')
    assert 'resumed epoch: 0, iter: 3' in proc.stdout + proc.stderr
    a, b = final_weights(full, 6), final_weights(crashed, 6)
    assert a['meta']['iter'] == b['meta']['iter'] == 6
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    for sa, sb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        assert torch.equal(sa['exp_avg'], sb['exp_avg'])


def test_dist_train_two_processes_on_cpu(tmp_path, toy_ade20k):
    cfg = write_config(tmp_path, toy_ade20k, max_iters=3)
    work = str(tmp_path / 'dist')
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', work,
                    env=dict(PORT='29517'))
    log = proc.stdout + proc.stderr
    assert 'gloo, rank 0 of 2' in log and 'Distributed training: True' in log
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
    cfg = write_config(tmp_path, toy_ade20k)
    ckpt = tmp_path / 'bad.pth'
    torch.save({'state_dict': {'backbone.foo.weight': torch.zeros(1)}}, ckpt)
    proc = run_tool('tools/test.py', cfg, str(ckpt), '--work-dir', str(tmp_path / 'w'),
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
    from mmseg_ext.utils.toy_data import make_cityscapes
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
    """--tta swaps in the config's multi-scale + flip pipeline and SegTTAModel."""
    cfg = write_config(tmp_path, toy_ade20k, max_iters=1, extra="""
        tta_ratios = [0.5, 1.0]
        tta_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='TestTimeAug', transforms=[
                [dict(type='AlignedResize', scale=(int(512 * r), int(128 * r)), size_divisor=32)
                 for r in tta_ratios],
                [dict(type='RandomFlip', prob=0., direction='horizontal'),
                 dict(type='RandomFlip', prob=1., direction='horizontal')],
                [dict(type='LoadAnnotations', reduce_zero_label=True)],
                [dict(type='PackSegInputs')]])]
        """)
    work = str(tmp_path / 'w')
    run_tool('tools/train.py', cfg, '--work-dir', work, '--cfg-options',
             'default_hooks.checkpoint.interval=1')
    proc = run_tool('tools/test.py', cfg, osp.join(work, 'iter_1.pth'), '--tta',
                    '--work-dir', work)
    assert 'mIoU' in proc.stdout + proc.stderr
