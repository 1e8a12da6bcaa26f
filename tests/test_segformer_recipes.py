"""The SegFormer configs train and test with the official recipe.

The reference below was written by hand from NVlabs/SegFormer (``local_configs/segformer/B0..B5``
and ``local_configs/_base_``, mmseg 0.x / mmcv 1.x), never from our configs, translated to the
mmseg 1.x names: mmcv 1.x ``Resize(img_scale, ratio_range)`` is ``RandomResize``, its
``Normalize`` and ``Pad`` live in the data preprocessor, ``samples_per_gpu`` is the per-process
``batch_size`` (8 GPUs), ``evaluation.interval`` is ``train_cfg.val_interval``.
"""
import glob
import inspect
import math
import os.path as osp
from collections import namedtuple

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope

from mmseg_ext.apis import multi_scale_flip_pipeline
from tests.conftest import REPO

CONFIGS = osp.join(REPO, 'configs/segformer')

Recipe = namedtuple('Recipe', 'arch data crop scale per_gpu embed slide val_interval')
# crop (h, w); scale (w, h) of the train resize and of the test resize; per_gpu = samples_per_gpu;
# embed = decoder_params.embed_dim (the official head ignores its ``channels=128``);
# slide = (window, stride) of the sliding-window test, None for whole-image test.
CITY_SLIDE = ((1024, 1024), (768, 768))
OFFICIAL = {
    'mit-b0_ade20k.py': Recipe('b0', 'ade', (512, 512), (2048, 512), 2, 256, None, 16000),
    'mit-b1_ade20k.py': Recipe('b1', 'ade', (512, 512), (2048, 512), 2, 256, None, 16000),
    'mit-b2_ade20k.py': Recipe('b2', 'ade', (512, 512), (2048, 512), 2, 768, None, 16000),
    'mit-b3_ade20k.py': Recipe('b3', 'ade', (512, 512), (2048, 512), 2, 768, None, 16000),
    'mit-b4_ade20k.py': Recipe('b4', 'ade', (512, 512), (2048, 512), 2, 768, None, 16000),
    # Ours: there is no official B5 512x512 ADE20K config; this is the B0-B4 ADE20K recipe with
    # the B5 model (what the config's header says).
    'mit-b5_ade20k.py': Recipe('b5', 'ade', (512, 512), (2048, 512), 2, 768, None, 16000),
    'mit-b5_ade20k-640.py': Recipe('b5', 'ade', (640, 640), (2048, 640), 2, 768, None, 16000),
    'mit-b0_cityscapes.py': Recipe('b0', 'city', (1024, 1024), (2048, 1024), 1, 256,
                                   CITY_SLIDE, 4000),
    'mit-b1_cityscapes.py': Recipe('b1', 'city', (1024, 1024), (2048, 1024), 1, 256,
                                   CITY_SLIDE, 4000),
    'mit-b2_cityscapes.py': Recipe('b2', 'city', (1024, 1024), (2048, 1024), 1, 768,
                                   CITY_SLIDE, 4000),
    'mit-b3_cityscapes.py': Recipe('b3', 'city', (1024, 1024), (2048, 1024), 1, 768,
                                   CITY_SLIDE, 4000),
    'mit-b4_cityscapes.py': Recipe('b4', 'city', (1024, 1024), (2048, 1024), 1, 768,
                                   CITY_SLIDE, 4000),
    'mit-b5_cityscapes.py': Recipe('b5', 'city', (1024, 1024), (2048, 1024), 1, 768,
                                   CITY_SLIDE, 4000),
    # segformer.b0.{768x768,640x1280,512x1024}.city.160k.py
    'mit-b0_cityscapes-768x768.py': Recipe('b0', 'city', (768, 768), (1536, 768), 1, 256,
                                           ((768, 768), (768, 768)), 4000),
    'mit-b0_cityscapes-640x1280.py': Recipe('b0', 'city', (640, 1280), (1280, 640), 1, 256,
                                            None, 4000),
    'mit-b0_cityscapes-512x1024.py': Recipe('b0', 'city', (512, 1024), (1024, 512), 1, 256,
                                            None, 4000),
}
IN_CHANNELS = {'b0': [32, 64, 160, 256]}  # b1-b5: [64, 128, 320, 512]
NUM_CLASSES = {'ade': 150, 'city': 19}
REDUCE_ZERO_LABEL = {'ade': True, 'city': False}
GPUS = 8
# Common to every official SegFormer config.
OPTIMIZER = dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01)
CUSTOM_KEYS = {'pos_block': dict(decay_mult=0.), 'norm': dict(decay_mult=0.),
               'head': dict(lr_mult=10.)}
MAX_ITERS, WARMUP_ITERS, WARMUP_RATIO, POWER = 160000, 1500, 1e-6, 1.0
CHECKPOINT_INTERVAL = 4000
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
TTA_RATIOS = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # the official multi-scale test (with flip)
# Test resize, official AlignedResize semantics (mmcv.imrescale: factor min(long / L, short / S),
# sides int(x * factor + 0.5), then each side rounded up to a multiple of 32), worked out by hand:
# image (h, w) -> resized (h, w), per test scale.
ALIGNED_SIZES = {
    (2048, 512): {(375, 500): (512, 704), (256, 1600): (352, 2048), (512, 512): (512, 512)},
    (2048, 640): {(375, 500): (640, 864), (256, 1600): (352, 2048), (512, 512): (640, 640)},
    # Cityscapes images are 1024x2048; the official Cityscapes test uses plain Resize, which
    # gives the same sizes there since they are already multiples of 32.
    (2048, 1024): {(1024, 2048): (1024, 2048)},
    (1536, 768): {(1024, 2048): (768, 1536)},
    (1280, 640): {(1024, 2048): (640, 1280)},
    (1024, 512): {(1024, 2048): (512, 1024)},
}
# lr of the backbone (base 6e-5) at some iterations, by hand from the formula below.
LR_AT = {0: 6e-11, 750: 6e-5 * 0.9953125 * 0.5000005, 1500: 5.94375e-5, 80000: 3e-5,
         159999: 3.75e-10}


def official_lr(i, base):
    """mmcv 1.x ``lr_config=dict(policy='poly', power=1.0, min_lr=0.0, warmup='linear',
    warmup_iters=1500, warmup_ratio=1e-6, by_epoch=False)`` at iteration i (0-based): the poly
    factor runs over all iterations; during the warm-up, the linear factor multiplies it.
    ``i`` may be an array."""
    warmup = 1 - (1 - i / WARMUP_ITERS) * (1 - WARMUP_RATIO)
    return base * (1 - i / MAX_ITERS) ** POWER * np.where(i < WARMUP_ITERS, warmup, 1.0)


def load(name):
    return Config.fromfile(osp.join(CONFIGS, name))


def step(pipeline, type_name):
    found = [t for t in pipeline if t['type'] == type_name]
    assert len(found) == 1, (type_name, pipeline)
    return found[0]


def test_every_shipped_real_data_config_is_listed():
    """A new ADE20K / Cityscapes config must get its row (or a reason not to)."""
    shipped = {osp.basename(p) for p in glob.glob(osp.join(CONFIGS, 'mit-b*_*.py'))
               if 'ade20k' in p or 'cityscapes' in p}
    ours_only = {'mit-b0_toy-ade20k.py', 'mit-b0_toy-ade20k_toy-in1k-pre.py',
                 'mit-b0_toy-cityscapes.py'}  # CPU demos on generated data
    assert shipped - ours_only == set(OFFICIAL)


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_optimizer_batch_and_loop(name):
    cfg, r = load(name), OFFICIAL[name]
    ow = cfg.optim_wrapper
    assert ow.type == 'OptimWrapper' and ow.get('clip_grad') is None  # optimizer_config=dict()
    opt = ow.optimizer
    assert (opt.type, opt.lr, tuple(opt.betas), opt.weight_decay) == (
        OPTIMIZER['type'], OPTIMIZER['lr'], OPTIMIZER['betas'], OPTIMIZER['weight_decay'])
    assert ow.paramwise_cfg.custom_keys.to_dict() == CUSTOM_KEYS
    assert cfg.train_dataloader.batch_size == r.per_gpu
    assert cfg.auto_scale_lr.base_batch_size == GPUS * r.per_gpu
    assert not cfg.auto_scale_lr.enable
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and cfg.train_cfg.max_iters == MAX_ITERS
    assert cfg.train_cfg.val_interval == r.val_interval
    ckpt = cfg.default_hooks.checkpoint
    assert ckpt.interval == CHECKPOINT_INTERVAL and not ckpt.by_epoch
    # Deliberate (configs/segformer/README.md, Recipe): officially every checkpoint is kept; we
    # keep the last 3 and the best mIoU.
    assert (ckpt.max_keep_ckpts, ckpt.save_best) == (3, 'mIoU')


_CURVES = {}


def lr_curves(cfg):
    """lr of a backbone and a decode-head parameter at every iteration, from OUR schedulers
    built by mmengine on a dummy optimizer (stepped as ParamSchedulerHook does); cached, as
    the configs share their schedule."""
    key = repr((cfg.optim_wrapper, cfg.param_scheduler))
    if key not in _CURVES:
        _CURVES[key] = _lr_curves(cfg.optim_wrapper, cfg.param_scheduler)
    return _CURVES[key]


def _lr_curves(optim_wrapper, param_scheduler):
    model = torch.nn.Module()
    model.backbone, model.decode_head = torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)
    optimizer = build_optim_wrapper(model, optim_wrapper).optimizer
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer)) for s in param_scheduler]
    optimizer.step()  # (no gradients: no update; keeps torch's step-order warning quiet)
    curves = np.empty((MAX_ITERS, 2))
    group = {id(p): g for g in optimizer.param_groups for p in g['params']}
    backbone, head = group[id(model.backbone.weight)], group[id(model.decode_head.weight)]
    for i in range(MAX_ITERS):
        curves[i] = backbone['lr'], head['lr']
        for s in schedulers:
            s.step()
    return curves


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_learning_rate_is_the_official_curve(name):
    cfg = load(name)
    curves = lr_curves(cfg)
    for i, lr in LR_AT.items():
        assert math.isclose(official_lr(i, 6e-5), lr, rel_tol=1e-9), i  # the formula itself
        assert math.isclose(curves[i, 0], lr, rel_tol=1e-9), (i, curves[i, 0], lr)
    for col, base in ((0, 6e-5), (1, 6e-4)):  # head: lr x 10
        expected = official_lr(np.arange(MAX_ITERS), base)
        assert np.allclose(curves[:, col], expected, rtol=1e-9, atol=0), (
            col, int(np.abs(curves[:, col] / expected - 1).argmax()))


def test_paramwise_groups_follow_official_module_names():
    """The official custom keys act on parameter names: on SegFormer they give every backbone
    norm no weight decay, every other backbone weight and bias decay 0.01, and everything in the
    decode head lr x 10 with decay 0.01 (its BN too: 'head' is matched before 'norm')."""
    cfg = load('mit-b0_ade20k.py')
    init_default_scope('mmseg')
    from mmseg.registry import MODELS
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    groups = build_optim_wrapper(model, cfg.optim_wrapper).optimizer.param_groups
    got = {id(p): (g['lr'], g['weight_decay']) for g in groups for p in g['params']}
    norms = (torch.nn.LayerNorm, torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)
    checked = 0
    for module_name, module in model.named_modules():
        for p in module.parameters(recurse=False):
            if module_name.startswith('decode_head.'):
                expected = (6e-4, 0.01)
            elif isinstance(module, norms):
                expected = (6e-5, 0.0)
            else:
                expected = (6e-5, 0.01)
            assert got[id(p)] == pytest.approx(expected, rel=1e-12), module_name
            checked += 1
    assert checked == len(list(model.parameters()))


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_train_pipeline_and_preprocessing(name):
    cfg, r = load(name), OFFICIAL[name]
    pipeline = cfg.train_dataloader.dataset.pipeline
    types = [t['type'] for t in pipeline]
    order = ['RandomResize', 'RandomCrop', 'RandomFlip', 'PhotoMetricDistortion']
    assert [types.index(t) for t in order] == sorted(types.index(t) for t in order)
    assert step(pipeline, 'LoadAnnotations').get('reduce_zero_label', False) == (
        REDUCE_ZERO_LABEL[r.data])
    resize = step(pipeline, 'RandomResize')
    assert (tuple(resize.scale), tuple(resize.ratio_range), resize.keep_ratio) == (
        r.scale, (0.5, 2.0), True)
    crop = step(pipeline, 'RandomCrop')
    assert (tuple(crop.crop_size), crop.cat_max_ratio, crop.get('ignore_index', 255)) == (
        r.crop, 0.75, 255)
    flip = step(pipeline, 'RandomFlip')
    assert (flip.prob, flip.get('direction', 'horizontal')) == (0.5, 'horizontal')
    # The official PhotoMetricDistortion has its defaults (brightness 32, contrast and
    # saturation 0.5-1.5, hue 18), the same in mmseg 1.x.
    assert set(step(pipeline, 'PhotoMetricDistortion')) == {'type'}
    pre = cfg.model.data_preprocessor
    assert (pre.mean, pre.std, pre.bgr_to_rgb) == (MEAN, STD, True)  # Normalize, to_rgb
    assert (tuple(pre.size), pre.pad_val, pre.seg_pad_val) == (r.crop, 0, 255)  # Pad


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_test_pipeline_and_inference(name):
    cfg, r = load(name), OFFICIAL[name]
    init_default_scope('mmseg')
    from mmseg.registry import TRANSFORMS
    for loader in ('val_dataloader', 'test_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        assert [t['type'] for t in pipeline] == [
            'LoadImageFromFile', 'AlignedResize', 'LoadAnnotations', 'PackSegInputs'], loader
        assert step(pipeline, 'LoadAnnotations').get('reduce_zero_label', False) == (
            REDUCE_ZERO_LABEL[r.data])
        resize_cfg = step(pipeline, 'AlignedResize')
        assert (tuple(resize_cfg.scale), resize_cfg.size_divisor,
                resize_cfg.get('keep_ratio', True)) == (r.scale, 32, True)
        resize = TRANSFORMS.build(resize_cfg)
        for (h, w), expected in ALIGNED_SIZES[r.scale].items():
            out = resize(dict(img=np.zeros((h, w, 3), np.uint8),
                              gt_seg_map=np.zeros((h, w), np.uint8)))
            assert out['img'].shape[:2] == expected and out['gt_seg_map'].shape == expected, (
                (h, w), out['img'].shape)
    test_cfg = cfg.model.test_cfg
    if r.slide is None:
        assert test_cfg.mode == 'whole'
    else:
        assert (test_cfg.mode, tuple(test_cfg.crop_size), tuple(test_cfg.stride)) == (
            'slide', *r.slide)
    # --tta: the official multi-scale + flip test, scales relative to this config's test scale.
    scales, flips = multi_scale_flip_pipeline(cfg.test_dataloader.dataset.pipeline,
                                              cfg.tta_ratios)[1].transforms[:2]
    assert [(tuple(t.scale), t.size_divisor) for t in scales] == [
        ((int(r.scale[0] * ratio), int(r.scale[1] * ratio)), 32) for ratio in TTA_RATIOS]
    assert [(t.type, t.prob) for t in flips] == [('RandomFlip', 0.), ('RandomFlip', 1.)]


@pytest.mark.parametrize('name', sorted(OFFICIAL))
def test_model(name):
    cfg, r = load(name), OFFICIAL[name]
    from mmseg_ext.models.backbones.mit import MiT
    backbone = cfg.model.backbone
    defaults = {k: v.default for k, v in inspect.signature(MiT).parameters.items()}
    assert (backbone.type, backbone.arch) == ('MiT', r.arch)
    for key, official in (('drop_path_rate', 0.1), ('drop_rate', 0.), ('attn_drop_rate', 0.)):
        assert backbone.get(key, defaults[key]) == official, key
    # Official pretrained='pretrained/mit_bX.pth' (ImageNet-1k); ours: mmseg's copy of it.
    assert backbone.init_cfg.type == 'Pretrained'
    assert osp.basename(backbone.init_cfg.checkpoint).startswith(f'mit_{r.arch}_')
    head = cfg.model.decode_head
    in_channels = IN_CHANNELS.get(r.arch, [64, 128, 320, 512])
    assert (head.type, head.in_channels, head.in_index, head.channels) == (
        'AllMLPHead', in_channels, [0, 1, 2, 3], r.embed)
    assert (head.dropout_ratio, head.num_classes, head.align_corners) == (
        0.1, NUM_CLASSES[r.data], False)
    assert head.norm_cfg == dict(type='SyncBN', requires_grad=True)
    assert head.loss_decode == dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    assert cfg.model.type == 'EncoderDecoder' and 'auxiliary_head' not in cfg.model
