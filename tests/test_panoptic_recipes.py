"""The Panoptic SegFormer configs against the official training / test recipe.

``OFFICIAL`` and ``OFFICIAL_CONFIGS`` are written out BY HAND from the official configs
(zhiqi-li/Panoptic-SegFormer, mmdet 2.x / mmcv 1.x: ``configs/panformer/base.py``, its
``_base_`` ``coco_panoptic_plus.py`` / ``default_runtime.py``, and
``panformer_{r50_12e,r50_24e,r101_24e,pvtb5_24e,swinl_24e}_coco_panoptic.py``), with mmcv 1.x /
mmdet 2.x defaults where a config leaves a value out; nothing here is read from our configs.
Our configs are loaded with ``Config.fromfile``; the schedule and the learning-rate multipliers
are evaluated with mmengine's own scheduler, hook and optimiser constructor.

Translation of mmdet 2.x / mmcv 1.x semantics used below:
- ``lr_config=dict(policy='step', step=[s])`` without ``warmup``: lr = base x 0.1^(number of
  steps <= epoch), epochs counted from 0, no warm-up (mmcv's ``StepLrUpdaterHook``, gamma 0.1).
- ``Resize(img_scale=(short, long), keep_ratio=True)`` rescales so that the short side is at most
  ``min`` and the long side at most ``max`` of the pair; mmdet 3.x's ``scale=(long, short)`` does
  the same, so scales are compared as (min, max) pairs.
- ``AutoAugment(policies)`` picks one policy uniformly: mmdet 3.x's ``RandomChoice`` without
  ``prob``.
- ``samples_per_gpu=1`` on 8 GPUs: ``batch_size=1`` and ``auto_scale_lr.base_batch_size=8``.
"""
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / 'configs/panoptic_segformer'

# ---- the official recipe, by hand (values common to every official COCO config) ----------
_SHORT_SIDES = (480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800)
OFFICIAL = dict(
    optimizer=dict(type='AdamW', lr=1.4e-4, weight_decay=1e-4),
    lr_mult={'backbone': 0.1, 'sampling_offsets': 0.1, 'reference_points': 0.1},
    grad_clip=dict(max_norm=0.1, norm_type=2),
    images_per_gpu=1, gpus=8, test_images_per_gpu=1,
    lr_gamma=0.1,  # mmcv StepLrUpdaterHook default; no warm-up
    eval_interval=1, checkpoint_interval=1, filter_empty_gt=False,
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True, pad_divisor=1,
    flip_prob=0.5,
    # AutoAugment: (a) multi-scale resize; (b) resize -> absolute-range crop -> multi-scale resize
    train_policies=[
        [('resize', [(s, 1333) for s in _SHORT_SIDES])],
        [('resize', [(400, 4200), (500, 4200), (600, 4200)]),
         ('crop', 'absolute_range', (384, 600), True),
         ('resize', [(s, 1333) for s in _SHORT_SIDES])],
    ],
    test_scale=(800, 1333),
    model=dict(
        num_queries=300, things=80, stuff=53, with_box_refine=True, as_two_stage=False,
        levels=4, embed_dims=256, heads=8, points=4, ffn=1024, ffn_drop=0.1, attn_drop=0.1,
        encoder_layers=6, decoder_layers=6,
        pos=dict(num_feats=128, normalize=True, offset=-0.5),
        neck=dict(type='ChannelMapper', kernel_size=1, out_channels=256, act_cfg=None,
                  norm_cfg=dict(type='GN', num_groups=32), num_outs=4),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
        loss_mask_weight=2.0,
        # cls_cost, reg_cost (xywh), iou_cost; the mask assigner adds the Dice cost
        costs=[('FocalLossCost', 2.0), ('BBoxL1Cost', 5.0), ('IoUCost', 2.0)],
        mask_cost=('DiceCost', 2.0),
        filter_max_pos=3,
        thing_mask=dict(num_layers=4, num_heads=8, self_attn=False),
        stuff_mask=dict(num_layers=6, num_heads=8, self_attn=True),
        max_per_img=100, overlap_things=0.4, overlap_stuff=0.2),
)
_RESNET = dict(type='ResNet', num_stages=4, out_indices=(1, 2, 3), frozen_stages=1,
               norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch')
OFFICIAL_CONFIGS = {  # ours -> the official config's own values
    'panoptic-segformer_r50_coco-panoptic-12e.py': dict(
        max_epochs=12, steps=[8], backbone=dict(_RESNET, depth=50),
        pretrained='torchvision://resnet50', neck_in=[512, 1024, 2048], quality=0.25),
    'panoptic-segformer_r50_coco-panoptic-24e.py': dict(
        max_epochs=24, steps=[18], backbone=dict(_RESNET, depth=50),
        pretrained='torchvision://resnet50', neck_in=[512, 1024, 2048], quality=0.25),
    'panoptic-segformer_r101_coco-panoptic-24e.py': dict(
        max_epochs=24, steps=[18], backbone=dict(_RESNET, depth=101),
        pretrained='torchvision://resnet101', neck_in=[512, 1024, 2048], quality=0.25),
    # easymd pvt_v2_b5: patch 4, dims 64/128/320/512, heads 1/2/5/8, MLP 4, depths 3/6/40/3,
    # sr 8/4/2/1, qkv bias, LayerNorm eps 1e-6, drop 0, drop path 0.1
    'panoptic-segformer_pvtv2-b5_coco-panoptic-24e.py': dict(
        max_epochs=24, steps=[18],
        backbone=dict(type='PyramidVisionTransformerV2', embed_dims=64, num_heads=[1, 2, 5, 8],
                      mlp_ratios=[4, 4, 4, 4], num_layers=[3, 6, 40, 3], sr_ratios=[8, 4, 2, 1],
                      qkv_bias=True, norm_cfg=dict(type='LN', eps=1e-6), drop_rate=0.0,
                      drop_path_rate=0.1, out_indices=(1, 2, 3)),
        pretrained='pvt_v2_b5_22k.pth', neck_in=[128, 320, 512], quality=0.3),
    # easymd SwinTransformer (embed_dim -> embed_dims, ape -> use_abs_pos_embed,
    # use_checkpoint -> with_cp); frozen_stages -1 (default); weights: Swin-L 22k, window 7, 224
    'panoptic-segformer_swin-l_coco-panoptic-24e.py': dict(
        max_epochs=24, steps=[18],
        backbone=dict(type='SwinTransformer', pretrain_img_size=224, embed_dims=192,
                      depths=[2, 2, 18, 2], num_heads=[6, 12, 24, 48], window_size=7,
                      mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.0,
                      attn_drop_rate=0.0, drop_path_rate=0.3, use_abs_pos_embed=False,
                      patch_norm=True, out_indices=(1, 2, 3), with_cp=False, frozen_stages=-1),
        pretrained='swin_large_patch4_window7_224_22k.pth', neck_in=[384, 768, 1536],
        quality=0.3),
}
# Ours, not the paper's: the claimed inheritance is checked, the rest is theirs.
CITYSCAPES = 'panoptic-segformer_r50_cityscapes-panoptic.py'
TOY_R18 = 'panoptic-segformer_r18_toy-coco-panoptic.py'
TOY_MIT = 'panoptic-segformer_mit-b0_toy-coco-panoptic.py'


def _load(name):
    return Config.fromfile(str(CONFIGS / name))


@pytest.fixture(scope='module')
def cfgs():
    return {name: _load(name) for name in [*OFFICIAL_CONFIGS, CITYSCAPES, TOY_R18, TOY_MIT]}


def _plain(value):
    """Config values as plain Python (ConfigDict -> dict, tuples -> lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _effective(cfg: dict, key: str, cls):
    """``cfg[key]``, or the default of ``cls`` (an mmdet / mmcv class, not ours) when the config
    leaves it out."""
    if key in cfg:
        return _plain(cfg[key])
    for klass in inspect.getmro(cls):
        params = inspect.signature(klass.__init__).parameters
        if key in params:
            return _plain(params[key].default)
    raise KeyError(f'{cls.__name__} has no argument {key!r}')


def _pair(scale):
    return (min(scale), max(scale))


def _steps(pipeline):
    """Our train-augmentation steps in the official vocabulary."""
    out = []
    for t in pipeline:
        if t['type'] == 'RandomChoiceResize':
            assert t['keep_ratio'] is True
            out.append(('resize', [_pair(s) for s in t['scales']]))
        elif t['type'] == 'RandomCrop':
            assert not t.get('recompute_bbox', False)  # mmdet 2.x RandomCrop default
            out.append(('crop', t['crop_type'], tuple(t['crop_size']), t['allow_negative_crop']))
        else:
            raise AssertionError(f'no official counterpart for {t["type"]}')
    return out


# ---- schedule and optimiser ---------------------------------------------------------------

def official_lr(epoch, steps, mult):
    """mmcv 1.x ``policy='step'`` without warm-up, at a 0-based epoch."""
    num_steps = sum(epoch >= s for s in steps)
    return OFFICIAL['optimizer']['lr'] * mult * OFFICIAL['lr_gamma'] ** num_steps


def official_mult(name, lr_mult=OFFICIAL['lr_mult']):
    """mmcv 1.x ``custom_keys``: the longest key contained in the parameter's name wins."""
    for key in sorted(lr_mult, key=len, reverse=True):
        if key in name:
            return lr_mult[key]
    return 1.0


def probe_module(names):
    """A module with one parameter per dotted name (submodules made on the way)."""
    root = torch.nn.Module()
    for name in names:
        *path, leaf = name.split('.')
        module = root
        for part in path:
            if not hasattr(module, part):
                module.add_module(part, torch.nn.Module())
            module = getattr(module, part)
        module.register_parameter(leaf, torch.nn.Parameter(torch.zeros(1)))
    return root


# our model's parameter names, one per lr group of the official recipe (see the model test)
PROBE_NAMES = ('backbone.layer2.0.conv1.weight',
               'encoder.layers.0.self_attn.sampling_offsets.weight',
               'reference_points_fc.weight', 'bbox_head.cls_branches.0.weight')


def simulate_lrs(cfg, module, iters_per_epoch):
    """lr of each named parameter at every training iteration, from our optimiser wrapper and
    param_scheduler stepped by mmengine's ``ParamSchedulerHook`` as the runner does."""
    from mmengine.hooks import ParamSchedulerHook
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    wrapper = build_optim_wrapper(module, cfg.optim_wrapper)
    schedulers = []
    for s in cfg.param_scheduler:
        s = dict(s)
        if s.pop('convert_to_iter_based', False):
            schedulers.append(PARAM_SCHEDULERS.get(s.pop('type')).build_iter_from_epoch(
                wrapper, epoch_length=iters_per_epoch, **s))
        else:
            schedulers.append(PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=wrapper)))
    runner = SimpleNamespace(param_schedulers=schedulers)
    hook = ParamSchedulerHook()
    group_of = {id(p): g for g in wrapper.optimizer.param_groups for p in g['params']}
    names = dict(module.named_parameters())
    lrs = []  # (epoch, {name: lr})
    for epoch in range(cfg.train_cfg.max_epochs):
        for it in range(iters_per_epoch):
            lrs.append((epoch, {n: group_of[id(p)]['lr'] for n, p in names.items()}))
            hook.after_train_iter(runner, it)
        hook.after_train_epoch(runner)
    return wrapper, lrs


@pytest.mark.parametrize('name', OFFICIAL_CONFIGS)
@pytest.mark.filterwarnings(r'ignore:Detected call of `scheduler.step\(\)` before')
def test_optimizer_and_schedule(cfgs, name):
    cfg, ref = cfgs[name], OFFICIAL_CONFIGS[name]
    optim = cfg.optim_wrapper
    assert optim.get('type', 'OptimWrapper') == 'OptimWrapper'  # fp32, as the official runs
    assert _plain(optim.optimizer) == OFFICIAL['optimizer']
    assert _plain(optim.clip_grad) == OFFICIAL['grad_clip']
    assert {k: v['lr_mult'] for k, v in optim.paramwise_cfg.custom_keys.items()} == \
        OFFICIAL['lr_mult']
    assert all(set(v) == {'lr_mult'} for v in optim.paramwise_cfg.custom_keys.values())
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.max_epochs == ref['max_epochs']

    wrapper, lrs = simulate_lrs(cfg, probe_module(PROBE_NAMES), iters_per_epoch=3)
    assert isinstance(wrapper.optimizer, torch.optim.AdamW)
    assert wrapper.optimizer.defaults['betas'] == (0.9, 0.999)  # mmcv 1.x: torch's AdamW
    assert len(lrs) == 3 * ref['max_epochs']
    for epoch, by_name in lrs:
        for pname, lr in by_name.items():
            assert lr == pytest.approx(official_lr(epoch, ref['steps'], official_mult(pname)),
                                       rel=1e-9), (name, epoch, pname)
    # the points that matter, spelled out: first iteration, last before / first after the step
    step = ref['steps'][0]
    head = PROBE_NAMES[-1]
    assert lrs[0][1][head] == pytest.approx(1.4e-4)
    assert lrs[0][1][PROBE_NAMES[0]] == pytest.approx(1.4e-5)
    assert lrs[3 * step - 1][1][head] == pytest.approx(1.4e-4)
    assert lrs[3 * step][1][head] == pytest.approx(1.4e-5)
    assert lrs[-1][1][PROBE_NAMES[1]] == pytest.approx(1.4e-6)


def test_every_parameter_gets_the_official_lr_mult():
    """Our R50 model through our optim wrapper: the parameters at lr x0.1 and x1 add up to the
    official model's (its layout written out by hand, tests/helpers/official_panoptic_keys.py),
    less the official head's unused branches (full lr). Catches a custom key that misses our
    parameter names as well as a wrong multiplier."""
    pytest.importorskip('mmcv.ops')
    from mmdet.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from tests.helpers.official_panoptic_keys import BUFFERS, official_layout

    official = {0.1: 0, 1.0: 0}
    for key, shape in official_layout('r50').items():
        if key.endswith(BUFFERS) or key.startswith(('bbox_head.reg_branches2.',
                                                    'bbox_head.cls_thing_branches.')):
            continue
        official[official_mult(key)] += torch.Size(shape).numel()

    cfg = _load('panoptic-segformer_r50_coco-panoptic-12e.py')
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    for p in model.parameters():  # frozen parameters get no multiplier; count them as trainable
        p.requires_grad_(True)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    ours = {0.1: 0, 1.0: 0}
    for group in wrapper.optimizer.param_groups:
        mult = round(group['lr'] / OFFICIAL['optimizer']['lr'], 6)
        ours[mult] = ours.get(mult, 0) + sum(p.numel() for p in group['params'])
    assert ours == official


# ---- data -------------------------------------------------------------------------------

@pytest.mark.parametrize('name', OFFICIAL_CONFIGS)
def test_data_recipe(cfgs, name):
    cfg = cfgs[name]
    pre = cfg.model.data_preprocessor
    assert pre.mean == OFFICIAL['mean'] and pre.std == OFFICIAL['std']
    assert pre.bgr_to_rgb is OFFICIAL['to_rgb']
    assert pre.pad_size_divisor == OFFICIAL['pad_divisor']

    types = [t['type'] for t in cfg.train_pipeline]
    assert types == ['LoadImageFromFile', 'LoadPanopticAnnotations', 'RandomFlip', 'RandomChoice',
                     'PackDetInputs']
    flip, choice = cfg.train_pipeline[2], cfg.train_pipeline[3]
    assert flip.prob == OFFICIAL['flip_prob']
    assert flip.get('direction', 'horizontal') == 'horizontal'
    assert choice.get('prob') is None  # uniform, as AutoAugment
    ours = [_steps(policy) for policy in choice.transforms]
    official = [[(s[0], [_pair(x) for x in s[1]]) if s[0] == 'resize' else s for s in policy]
                for policy in OFFICIAL['train_policies']]
    assert ours == official

    test = [t for t in cfg.test_pipeline if t['type'] not in ('LoadImageFromFile',
                                                               'LoadPanopticAnnotations',
                                                               'PackDetInputs')]
    assert len(test) == 1 and test[0].type == 'Resize' and test[0].keep_ratio is True
    assert _pair(test[0].scale) == OFFICIAL['test_scale']
    assert cfg.test_pipeline == cfg.val_dataloader.dataset.pipeline

    assert cfg.train_dataloader.batch_size == OFFICIAL['images_per_gpu']
    assert cfg.auto_scale_lr.base_batch_size == OFFICIAL['images_per_gpu'] * OFFICIAL['gpus']
    assert cfg.val_dataloader.batch_size == cfg.test_dataloader.batch_size == \
        OFFICIAL['test_images_per_gpu']
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    assert cfg.train_dataloader.dataset.filter_cfg.filter_empty_gt is OFFICIAL['filter_empty_gt']
    assert cfg.train_cfg.val_interval == OFFICIAL['eval_interval']
    assert cfg.default_hooks.checkpoint.interval == OFFICIAL['checkpoint_interval']
    # official evaluation metric=['bbox', 'segm', 'panoptic']
    metrics = {e['type']: e for e in cfg.val_evaluator}
    assert set(metrics) == {'CocoPanopticMetric', 'CocoMetric'}
    assert metrics['CocoMetric']['metric'] == ['bbox', 'segm']


# ---- model ------------------------------------------------------------------------------

def _check_model(model, ref, *, things=None, stuff=None):
    from mmcv.ops import MultiScaleDeformableAttention

    m = OFFICIAL['model']
    assert model.type == 'PanopticSegFormer'
    assert model.num_queries == m['num_queries']
    assert model.with_box_refine is m['with_box_refine']
    assert model.as_two_stage is m['as_two_stage']
    assert model.num_feature_levels == m['levels']
    neck = _plain(model.neck)
    assert neck.pop('in_channels') == ref['neck_in']
    assert neck == m['neck']
    for part, attn_key, num in (('encoder', 'self_attn_cfg', m['encoder_layers']),
                                ('decoder', 'cross_attn_cfg', m['decoder_layers'])):
        layer = model[part].layer_cfg
        assert model[part].num_layers == num
        msda = layer[attn_key]
        assert msda.embed_dims == m['embed_dims'] and msda.num_levels == m['levels']
        assert _effective(msda, 'num_heads', MultiScaleDeformableAttention) == m['heads']
        assert _effective(msda, 'num_points', MultiScaleDeformableAttention) == m['points']
        assert _effective(msda, 'dropout', MultiScaleDeformableAttention) == m['attn_drop']
        assert layer.ffn_cfg.feedforward_channels == m['ffn']
        assert layer.ffn_cfg.ffn_drop == m['ffn_drop']
    dec_self = model.decoder.layer_cfg.self_attn_cfg
    assert dec_self.num_heads == m['heads'] and dec_self.dropout == m['attn_drop']
    assert model.decoder.return_intermediate is True
    assert model.decoder.post_norm_cfg is None  # mmdet 2.x's deformable decoder has none
    pos = _plain(model.positional_encoding)
    assert {k: pos[k] for k in m['pos']} == m['pos']

    head = model.bbox_head
    assert head.num_things_classes == (m['things'] if things is None else things)
    assert head.num_stuff_classes == (m['stuff'] if stuff is None else stuff)
    assert head.sync_cls_avg_factor is True
    for key in ('loss_cls', 'loss_bbox', 'loss_iou'):
        assert {k: v for k, v in _plain(head[key]).items() if k in m[key]} == m[key], key
    assert head.loss_mask.type == 'DiceLoss'
    assert head.loss_mask.loss_weight == m['loss_mask_weight']
    # Deliberate (docs/panoptic_segformer.md): the official stuff classification is its
    # loss_cls (focal, weight 2) multiplied by 2 in PanformerHead.loss; we write the product.
    stuff_cls = _plain(head.loss_stuff_cls)
    assert stuff_cls == dict(m['loss_cls'], loss_weight=2 * m['loss_cls']['loss_weight'])
    for dec, key in ((head.thing_mask_decoder, 'thing_mask'), (head.stuff_mask_decoder,
                                                               'stuff_mask')):
        assert dec.num_layers == m[key]['num_layers'], key
        assert dec.num_heads == m[key]['num_heads'], key
        assert dec.self_attn is m[key]['self_attn'], key

    def costs(assigner):
        assert assigner.type == 'HungarianAssigner'
        return [(c['type'], c['weight']) for c in assigner.match_costs]

    train = model.train_cfg
    assert costs(train.assigner) == m['costs']
    assert all(c.get('box_format') == 'xywh' for c in train.assigner.match_costs
               if c['type'] == 'BBoxL1Cost')
    assert train.assigner.match_costs[2].iou_mode == 'giou'
    assert costs(train.query_filter.assigner) == m['costs']  # official HungarianAssigner_filter
    assert train.query_filter.max_rounds == m['filter_max_pos']
    # Deliberate (docs): the official HungarianAssigner_multi_info doubles its configured
    # FocalLossCost weight 2 in code; we write the effective 4. Dice cost = our PanSegDiceCost.
    (cls_cost, w), *rest = costs(train.mask_assigner)
    assert (cls_cost, w) == ('FocalLossCost', 2 * m['costs'][0][1])
    assert rest == [*m['costs'][1:], ('PanSegDiceCost', m['mask_cost'][1])]

    test = model.test_cfg
    assert test.max_per_img == m['max_per_img']
    # official quality_threshold_things == quality_threshold_stuff in every config: one score_thr
    assert test.merging.score_thr == ref['quality']
    assert test.merging.overlap_thr_thing == m['overlap_things']
    assert test.merging.overlap_thr_stuff == m['overlap_stuff']


def _check_backbone(backbone, ref):
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope('mmdet')
    cls = MODELS.get(backbone.type)
    for key, value in ref['backbone'].items():
        if key == 'type':
            assert backbone.type == value
            continue
        assert _effective(backbone, key, cls) == _plain(value), key
    assert backbone.init_cfg.type == 'Pretrained'
    assert backbone.init_cfg.checkpoint.rsplit('/', 1)[-1] == ref['pretrained'].rsplit('/', 1)[-1]


@pytest.mark.parametrize('name', OFFICIAL_CONFIGS)
def test_model_settings(cfgs, name):
    pytest.importorskip('mmcv.ops')
    ref = OFFICIAL_CONFIGS[name]
    _check_model(cfgs[name].model, ref)
    _check_backbone(cfgs[name].model.backbone, ref)


# ---- our own configs: only what they claim to inherit -----------------------------------

def test_cityscapes_config_keeps_the_r50_model_and_optimizer(cfgs):
    """Header: 'model and optimiser are the COCO R-50 recipe' (8 things, 11 stuff)."""
    pytest.importorskip('mmcv.ops')
    cfg, ref = cfgs[CITYSCAPES], OFFICIAL_CONFIGS['panoptic-segformer_r50_coco-panoptic-12e.py']
    _check_model(cfg.model, ref, things=8, stuff=11)
    _check_backbone(cfg.model.backbone, ref)
    assert _plain(cfg.optim_wrapper.optimizer) == OFFICIAL['optimizer']
    assert _plain(cfg.optim_wrapper.clip_grad) == OFFICIAL['grad_clip']
    assert {k: v['lr_mult'] for k, v in cfg.optim_wrapper.paramwise_cfg.custom_keys.items()} == \
        OFFICIAL['lr_mult']
    assert cfg.train_dataloader.batch_size == 1 and cfg.auto_scale_lr.base_batch_size == 8


def test_toy_configs_inherit_the_losses_costs_and_optimizer(cfgs):
    """The toy header: reduced model, AdamW lr 1e-3 with the backbone at x1 (sampling offsets
    and reference points keep the official x0.1), clip 1.0, 100 epochs with a step at 80;
    losses, matching costs, query filter and merging are the official ones."""
    toy = cfgs[TOY_R18]
    m = OFFICIAL['model']
    optim = toy.optim_wrapper
    assert _plain(optim.optimizer) == dict(OFFICIAL['optimizer'], lr=1e-3)
    assert _plain(optim.clip_grad) == dict(OFFICIAL['grad_clip'], max_norm=1.0)
    assert {k: v['lr_mult'] for k, v in optim.paramwise_cfg.custom_keys.items()} == \
        dict(OFFICIAL['lr_mult'], backbone=1.0)
    assert _plain(toy.param_scheduler) == [dict(type='MultiStepLR', begin=0, end=100,
                                                by_epoch=True, milestones=[80], gamma=0.1)]
    head, train = toy.model.bbox_head, toy.model.train_cfg
    for key in ('loss_cls', 'loss_bbox', 'loss_iou'):
        assert {k: v for k, v in _plain(head[key]).items() if k in m[key]} == m[key], key
    assert head.loss_mask.loss_weight == m['loss_mask_weight']
    assert head.loss_stuff_cls.loss_weight == 2 * m['loss_cls']['loss_weight']
    assert [(c.type, c.weight) for c in train.assigner.match_costs] == m['costs']
    assert train.query_filter.max_rounds == m['filter_max_pos']
    assert [c.type for c in train.mask_assigner.match_costs][-1] == 'PanSegDiceCost'
    assert head.thing_mask_decoder.self_attn is False and head.stuff_mask_decoder.self_attn is True
    merging = toy.model.test_cfg.merging
    assert (merging.score_thr, merging.overlap_thr_thing, merging.overlap_thr_stuff) == \
        (0.25, m['overlap_things'], m['overlap_stuff'])

    # MiT-B0 toy: 'same REDUCED head as the R-18 toy config': all but the backbone and neck input
    mit = _plain(cfgs[TOY_MIT].to_dict())
    r18 = _plain(toy.to_dict())
    assert mit['model'].pop('backbone')['type'] == 'MiT'
    r18['model'].pop('backbone')
    assert mit['model']['neck'].pop('in_channels') == [64, 160, 256]
    r18['model']['neck'].pop('in_channels')
    assert mit == r18
