"""SegFormer-B0 learns the built-in ADE20K-format data: a short CPU run of the toy config must
clear an mIoU threshold (a random or constant predictor scores below 10 on this data).

The run is chaotic (docs/toy_data.md); the threshold holds on either CPU code path (checked
with one thread on AVX-512 and with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
MKL_ENABLE_INSTRUCTIONS=AVX2)."""
import os.path as osp

from mmengine.config import Config
from mmengine.runner import Runner

from tests.conftest import REPO

MIN_MIOU = 45.0


def test_b0_learns_toy_ade20k(tmp_path):
    from mmseg_ext.toy_data.images import make_ade20k
    info = make_ade20k(str(tmp_path / 'data'), num_train=40, num_val=10, size=(128, 128), seed=0)
    cfg = Config.fromfile(osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py'))
    cfg.work_dir = str(tmp_path / 'work')
    iters = 250
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[split].dataset.data_root = info['data_root']
        cfg[split].update(num_workers=0, persistent_workers=False)
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    cfg.param_scheduler[1].end = iters
    cfg.default_hooks.checkpoint.update(interval=iters)
    cfg.default_hooks.logger.update(interval=50)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert metrics['mIoU'] >= MIN_MIOU, metrics
