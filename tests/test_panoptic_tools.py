"""Panoptic SegFormer through the same tools as the segmentation configs (tools/dist_train.sh,
tools/train.py, tools/test.py --show-dir) and a learning run of the CPU toy config."""
import os.path as osp
import textwrap

import pytest
import torch

pytest.importorskip('mmcv.ops')
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmseg_ext.toy_data import images as toy_data  # noqa: E402
from tests.conftest import REPO, run_tool  # noqa: E402

TOY_CONFIG = osp.join(REPO, 'configs', 'panoptic_segformer',
                      'panoptic-segformer_r18_toy-coco-panoptic.py')
# Measured with the full toy schedule (100 epochs, seeds 0-2): PQ 64.4 +- 3.6, PQ_th 50.0 +- 6.6;
# after 25 epochs PQ 51.8 / 57.7 / 56.9, PQ_th 31.1 / 39.5 / 37.3. Early in training only stuff
# is painted (PQ 22.1, PQ_th 0.0 after 40 iterations), so the thresholds need things to be
# detected and segmented.
MIN_PQ, MIN_PQ_THINGS = 45.0, 20.0


def _write_config(tmp_path, data_root, max_epochs):
    cfg = tmp_path / 'toy.py'
    cfg.write_text(textwrap.dedent(f"""\
        _base_ = {TOY_CONFIG!r}
        data_root = {str(data_root) + '/'!r}
        train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root))
        val_dataloader = dict(dataset=dict(data_root=data_root))
        test_dataloader = val_dataloader
        val_evaluator = [
            dict(type='CocoPanopticMetric',
                 ann_file=data_root + 'annotations/panoptic_val2017.json',
                 seg_prefix=data_root + 'annotations/panoptic_val2017/'),
            dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val2017.json',
                 metric=['bbox', 'segm']),
        ]
        test_evaluator = val_evaluator
        max_epochs = {max_epochs}
        train_cfg = dict(max_epochs=max_epochs, val_interval=100)
        param_scheduler = []
        default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
        """))
    return str(cfg)


def test_dist_train_then_test_with_panoptic_overlays(tmp_path):
    """2 CPU processes (gloo) through tools/dist_train.sh, then tools/test.py reports PQ, PQ_th,
    PQ_st and box / mask AP in one run and --show-dir paints one overlay per image."""
    data = tmp_path / 'data'
    toy_data.GENERATORS['coco-panoptic'](data, num_train=4, num_val=2, size=(64, 80), seed=0)
    cfg = _write_config(tmp_path, data, max_epochs=1)
    work = str(tmp_path / 'work')
    proc = run_tool('tools/dist_train.sh', cfg, '2', '--work-dir', work, env=dict(PORT='29521'))
    log = proc.stdout + proc.stderr
    assert 'gloo, rank 0 of 2' in log and 'Distributed training: True' in log
    ckpt = osp.join(work, 'epoch_1.pth')
    assert torch.load(ckpt, map_location='cpu')['meta']['epoch'] == 1

    vis = tmp_path / 'vis'
    proc = run_tool('tools/test.py', cfg, ckpt, '--work-dir', work, '--show-dir', str(vis),
                    '--out', str(tmp_path / 'results.pkl'))
    log = proc.stdout + proc.stderr
    for key in ('coco_panoptic/PQ:', 'coco_panoptic/PQ_th:', 'coco_panoptic/PQ_st:',
                'coco/bbox_mAP:', 'coco/segm_mAP:'):
        assert key in log, key
    assert len([p for p in vis.rglob('*') if p.is_file()]) == 2  # named as the images
    assert (tmp_path / 'results.pkl').is_file()


def test_toy_config_learns(tmp_path):
    """A quarter of the toy schedule (25 of 100 epochs, about a minute) clears PQ and PQ_th
    thresholds on the built-in COCO-panoptic data: things are learned, not only stuff."""
    data = tmp_path / 'data'
    toy_data.GENERATORS['coco-panoptic'](data, seed=0)  # the README's data: 40 / 10 images
    cfg = Config.fromfile(_write_config(tmp_path, data, max_epochs=25))
    cfg.train_dataloader.batch_size = 4
    cfg.default_hooks.update(logger=dict(type='LoggerHook', interval=50),
                             checkpoint=dict(type='CheckpointHook', interval=25))
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert metrics['coco_panoptic/PQ'] >= MIN_PQ, metrics
    assert metrics['coco_panoptic/PQ_th'] >= MIN_PQ_THINGS, metrics
