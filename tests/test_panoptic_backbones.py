"""Panoptic SegFormer with each supported backbone family: C3-C5 wiring and a training step."""
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmcv.ops')
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import InstanceData, PixelData  # noqa: E402

import mmseg_ext  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs/panoptic_segformer'

# Tiny members of each family (same code paths as R-50/101, PVTv2-B5, Swin-L, MiT-B*).
BACKBONES = {
    'resnet18': (dict(type='ResNet', depth=18, base_channels=16, out_indices=(1, 2, 3)),
                 [32, 64, 128]),
    'pvtv2-b0': (dict(type='PyramidVisionTransformerV2', embed_dims=32, num_layers=[1, 1, 1, 1],
                      out_indices=(1, 2, 3)), [64, 160, 256]),
    'swin': (dict(type='SwinTransformer', embed_dims=24, depths=[1, 1, 1, 1],
                  num_heads=[1, 2, 3, 6], window_size=4, out_indices=(1, 2, 3)),
             [48, 96, 192]),
    'mit-b0': (dict(type='MiT', arch='b0', out_indices=(1, 2, 3)), [64, 160, 256]),
}


def _sample(h=64, w=96):
    masks = torch.zeros(2, h, w, dtype=torch.bool)
    masks[0, 8:30, 10:40] = True
    masks[1, 30:60, 50:90] = True
    sem = torch.full((1, h, w), 255, dtype=torch.long)
    sem[0, :8] = 5
    sem[0, 40:, :40] = 6
    sample = DetDataSample(metainfo=dict(img_shape=(h, w), batch_input_shape=(h, w),
                                         ori_shape=(h, w), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 8., 40., 30.], [50., 30., 90., 60.]]),
        labels=torch.tensor([0, 3]), masks=BitmapMasks(masks.numpy(), h, w))
    sample.gt_sem_seg = PixelData(sem_seg=sem)
    return sample


@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbone_wiring_and_training_step(name):
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(CONFIGS / 'panoptic-segformer_r18_toy-coco-panoptic.py'))
    backbone, channels = BACKBONES[name]
    cfg.model.backbone = backbone
    cfg.model.neck.in_channels = channels
    cfg.model.num_queries = 10
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    inputs = torch.randn(1, 3, 64, 96)
    feats = model.extract_feat(inputs)
    # C3-C5 mapped to the model width, plus the stride-64 level
    assert [tuple(f.shape[-2:]) for f in feats] == [(8, 12), (4, 6), (2, 3), (1, 2)]
    assert all(f.shape[1] == cfg.model.neck.out_channels for f in feats)
    losses = model.loss(inputs, [_sample()])
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_mit_toy_config_builds():
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(CONFIGS / 'panoptic-segformer_mit-b0_toy-coco-panoptic.py'))
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'MiT'
