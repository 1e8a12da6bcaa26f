"""The training recipes of the Long-Short Transformer configs against the official ones: ViL-LS
(NVIDIA/transformer-ls imagenet/), CvT*-LS (microsoft/CvT, the CvT recipe the paper's CvT*-LS
reuses) and the enwik8 / text8 character LMs (transformer-ls autoregressive/launch/*.sh). The
tables are written by hand from the official code; the schedules are our param_scheduler built
with mmengine and stepped as its ParamSchedulerHook does, against the official formula."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from tests.conftest import REPO
from tests.test_imagenet import build_classifier, official_vil_ls_keys

CONFIGS = osp.join(REPO, 'configs', 'ls_transformer')


def load(name):
    return Config.fromfile(osp.join(CONFIGS, f'{name}.py'))


def lr_per_iteration(cfg, iterations, epoch_length):
    """The lr each training iteration runs with: iteration-based schedulers step after every
    iteration, epoch-based ones after every epoch (mmengine's ParamSchedulerHook)."""
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(),
                                lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = []
    for scheduler in cfg.param_scheduler:
        extra = dict(epoch_length=epoch_length) if scheduler.get('convert_to_iter_based') else {}
        schedulers.append(PARAM_SCHEDULERS.build(
            scheduler, default_args=dict(optimizer=optimizer, **extra)))
    lrs = []
    for it in range(iterations):
        lrs.append(optimizer.param_groups[0]['lr'])
        for s in schedulers:
            if not s.by_epoch:
                s.step()
        if (it + 1) % epoch_length == 0:
            for s in schedulers:
                if s.by_epoch:
                    s.step()
    return lrs


def check_classification_augmentation(cfg, size, resize_to, centre_crop):
    """DeiT / timm augmentation of both official codes (timm create_transform + Mixup): bicubic
    random resized crop, flip 0.5, RandAugment rand-m9-mstd0.5-inc1 (so no colour jitter),
    random erasing 0.25 per pixel; Mixup 0.8 or CutMix 1.0, one of the two per batch (timm
    switch prob 0.5), smoothed labels 0.1; bicubic test resize."""
    train = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert list(train) == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'RandAugment',
                           'RandomErasing', 'PackInputs']
    crop = train['RandomResizedCrop']
    assert (crop.scale, crop.interpolation) == (size, 'bicubic')
    assert crop.get('crop_ratio_range', (0.08, 1.0)) == (0.08, 1.0)
    assert crop.get('aspect_ratio_range', (3 / 4, 4 / 3)) == (3 / 4, 4 / 3)
    assert (train['RandomFlip'].prob, train['RandomFlip'].direction) == (0.5, 'horizontal')
    ra = train['RandAugment']
    assert (ra.policies, ra.num_policies, ra.magnitude_level, ra.magnitude_std,
            ra.total_level) == ('timm_increasing', 2, 9, 0.5, 10)
    er = train['RandomErasing']
    assert (er.erase_prob, er.mode, er.min_area_ratio, er.max_area_ratio) == (
        0.25, 'rand', 0.02, 1 / 3)
    head = cfg.model.head
    assert (head.loss.type, head.loss.label_smooth_val) == ('LabelSmoothLoss', 0.1)
    augments = cfg.model.train_cfg.augments
    assert [(a.type, a.alpha) for a in augments] == [('Mixup', 0.8), ('CutMix', 1.0)]
    assert cfg.model.train_cfg.get('probs') is None  # uniform choice = timm's switch prob 0.5
    test = [t for t in cfg.test_dataloader.dataset.pipeline if t['type'] != 'LoadImageFromFile']
    if centre_crop:
        assert (test[0].type, test[0].scale, test[0].edge, test[0].interpolation) == (
            'ResizeEdge', resize_to, 'short', 'bicubic')
        assert (test[1].type, test[1].crop_size) == ('CenterCrop', size)
    else:  # CvT's TEST.CENTER_CROP False: a straight resize to size x size
        assert (test[0].type, test[0].scale, test[0].interpolation) == ('Resize', size, 'bicubic')
    assert test[-1].type == 'PackInputs'
    # neither official code has EMA or gradient clipping (ViL --clip-grad -1, CvT CLIP_GRAD_NORM 0)
    assert 'clip_grad' not in cfg.optim_wrapper
    assert [h.type for h in cfg.custom_hooks] == ['RNGStateHook']
    assert (cfg.train_cfg.by_epoch, cfg.train_cfg.max_epochs) == (True, 300)
    assert cfg.train_dataloader.drop_last  # both official train loaders drop the last batch


# ---- ViL-LS: transformer-ls imagenet/ config/msvit.yaml + config/defaults.py (shared) and
# ---- launch/train/train_{medium_224,base_224,medium_384}.sh (per run) ----
# OPTIM.LR is the lr of the whole batch DATALOADER.BSZ (n_gpus x per GPU); the code does not
# rescale it. AdamW eps OPTIM.ADAM.EPS 1e-8, betas 0.9 / 0.999. Test resize int(size / 0.875).
VIL_LS = dict(lr=8e-4, weight_decay=0.1, epochs=300, warmup_epochs=5, warmup_factor=0.002,
              min_lr=1e-6)
VIL_LS_RUNS = {  # config: (arch, GPUs, images per GPU, drop path, input size, window, test resize)
    'vil-ls-medium_in1k': ('medium', 8, 128, 0.3, 224, 7, 256),
    'vil-ls-base_in1k': ('base', 16, 64, 0.5, 224, 7, 256),
    'vil-ls-medium_in1k-384px': ('medium', 2 * 16, 32, 0.2, 384, 8, 438),
}


def check_vil_ls(cfg, arch, gpus, per_gpu, drop_path, size, window, resize_to):
    bb = cfg.model.backbone
    assert (bb.type, bb.arch, bb.img_size, bb.window_size, bb.dp_rank, bb.drop_path_rate) == (
        'ViLLS', arch, size, window, 8, drop_path)
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.eps, tuple(opt.betas)) == (
        'AdamW', VIL_LS['lr'], VIL_LS['weight_decay'], 1e-8, (0.9, 0.999))
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu == 1024
    assert cfg.train_dataloader.sampler.type == 'DefaultSampler'  # AUG.REPEATED_AUG False
    # which parameters decay: checked on the parameters of ViL-LS-Small below
    assert cfg.optim_wrapper.paramwise_cfg == load('vil-ls-small_in1k').optim_wrapper.paramwise_cfg
    check_classification_augmentation(cfg, size, resize_to, centre_crop=True)


@pytest.mark.parametrize('config', sorted(VIL_LS_RUNS))
def test_vil_ls_is_the_official_recipe(config):
    check_vil_ls(load(config), *VIL_LS_RUNS[config])


def test_vil_ls_small_uses_the_medium_recipe():
    # Deliberate (docs/imagenet.md): the LS code has no ViL-LS-Small run; Medium's recipe with
    # ViL-Small's drop path 0.1.
    check_vil_ls(load('vil-ls-small_in1k'), 'small', 8, 128, 0.1, 224, 7, 256)


def decay_of_each_parameter(model, optim_wrapper):
    """{parameter name: weight decay} of the optimiser our config builds for ``model``."""
    optimizer = build_optim_wrapper(model, optim_wrapper).optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: group['weight_decay'] for group in optimizer.param_groups
            for p in group['params']}


# msvit.py MsViT.no_weight_decay(), matched as substrings of the parameter names by
# optim/__init__.py get_opt (so the LS attention's dual_ln_* keep the decay)
VIL_LS_NO_DECAY = ('pos_embed', 'cls_token', 'norm.weight', 'norm.bias', 'norm_embed',
                   'head.bias', 'relative_position')


def test_vil_ls_weight_decay_falls_on_the_official_parameters():
    from mmseg_ext.models.backbones.vil_ls import convert_official_vil_ls
    official = official_vil_ls_keys((1, 2, 8, 1))
    # tag each official tensor with its own value to find it again after the conversion
    tagged = {k: torch.full(shape, float(i + 1)) for i, (k, shape) in enumerate(official.items())
              if not k.endswith('relative_position_index')}
    converted = convert_official_vil_ls(tagged)
    assert all(t.min() == t.max() for t in converted.values())
    ours = {name: list(official)[int(t.flatten()[0]) - 1] for name, t in converted.items()}
    cfg = load('vil-ls-small_in1k')
    decay = decay_of_each_parameter(build_classifier(f'{CONFIGS}/vil-ls-small_in1k.py'),
                                    cfg.optim_wrapper)
    assert set(decay) == set(ours)
    for name, theirs in ours.items():
        official_decay = 0.0 if any(nd in theirs for nd in VIL_LS_NO_DECAY) else 0.1
        assert decay[name] == official_decay, (name, theirs)


def vil_ls_official_lr(it, steps_per_epoch):
    """optim/lr_scheduler.py WarmupCosineAnnealingLR, stepped after every iteration (not
    SOLVER.EPOCH_BASED_SCHEDULE): linear from 0.002 lr over int(5 x steps) iterations, then the
    cosine of the whole run, from iteration 0, to MIN_LR."""
    lr, warmup = VIL_LS['lr'], int(VIL_LS['warmup_epochs'] * steps_per_epoch)
    if it < warmup:
        return lr * (VIL_LS['warmup_factor'] + (1 - VIL_LS['warmup_factor']) * it / warmup)
    progress = it / (VIL_LS['epochs'] * steps_per_epoch)
    return VIL_LS['min_lr'] + (lr - VIL_LS['min_lr']) * (1 + math.cos(math.pi * progress)) / 2


COSINE_GAP = 0.016  # docs/imagenet.md: the separate cosine differs by at most 1.6 % of the peak


def test_vil_ls_schedule_is_the_official_one():
    cfg = load('vil-ls-medium_in1k')
    steps = 50  # iterations per epoch (1251 on ImageNet at 1024 images)
    ours = lr_per_iteration(cfg, 300 * steps, steps)
    lr, warmup = VIL_LS['lr'], 5 * steps
    assert ours[0] == pytest.approx(0.002 * lr, rel=1e-9)
    for it in range(warmup):
        # mmengine's iteration-based LinearLR reaches the peak at the warm-up's last iteration,
        # the official one iteration later: less than one warm-up step apart
        assert abs(ours[it] - vil_ls_official_lr(it, steps)) <= lr / warmup * 1.001, it
    gaps = [abs(ours[it] - vil_ls_official_lr(it, steps)) for it in range(warmup, 300 * steps)]
    # Deliberate (docs/imagenet.md): mmengine's cosine runs over the last 295 epochs from the
    # peak, the official over all 300 from iteration 0
    assert 0.01 * lr < max(gaps) <= COSINE_GAP * lr
    assert ours[warmup] == pytest.approx(lr, rel=1e-9)
    assert ours[-1] == pytest.approx(VIL_LS['min_lr'], rel=0.05)
    assert vil_ls_official_lr(300 * steps - 1, steps) == pytest.approx(VIL_LS['min_lr'], rel=0.05)


# ---- CvT*-LS: microsoft/CvT experiments/imagenet/cvt/cvt-{13-224,21-224,21-384}x*.yaml,
# ---- lib/config/default.py, tools/train.py, lib/optim/build.py, timm 0.3.2 ----
# TRAIN.LR is per GPU: SCALE_LR multiplies it by the world size (8 GPUs, docs/imagenet.md).
# torch AdamW (eps 1e-8, betas 0.9 / 0.999); no decay on LayerNorms, biases ('ln', 'bias'),
# cls_token and pos_embed (no_weight_decay). Scheduler: timm cosine, epochs 300, warmup_epochs
# 5 from warmup_lr 1e-6, min_lr 1e-5, stepped once per epoch (the cooldown_epochs of the yaml
# only lengthen timm's suggested epoch count, which train.py ignores). Drop path 0.1 in stage 3.
CVT_GPUS = 8
CVT = dict(epochs=300, warmup_epochs=5, warmup_lr=1e-6, min_lr=1e-5, drop_path=0.1)
CVT_RUNS = {  # config: (arch, images per GPU, lr per GPU, weight decay, repeated aug, size,
    #                     test centre crop)
    'cvt-ls-13_in1k': ('13', 256, 2.5e-4, 0.05, False, 224, True),
    'cvt-ls-21_in1k': ('21', 128, 1.25e-4, 0.1, True, 224, True),
    'cvt-ls-21_in1k-384px': ('21', 128, 1.25e-4, 0.1, False, 384, False),
}


@pytest.mark.parametrize('config', sorted(CVT_RUNS))
def test_cvt_ls_is_the_official_cvt_recipe(config):
    arch, per_gpu, lr_per_gpu, wd, repeated_aug, size, centre_crop = CVT_RUNS[config]
    cfg = load(config)
    bb = cfg.model.backbone
    assert (bb.type, bb.arch, bb.img_size, bb.drop_path_rate) == (
        'CvTLS', arch, size, CVT['drop_path'])
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.weight_decay, opt.eps, tuple(opt.betas)) == (
        'AdamW', wd, 1e-8, (0.9, 0.999))
    assert opt.lr == pytest.approx(lr_per_gpu * CVT_GPUS, rel=1e-12)
    assert cfg.train_dataloader.batch_size == per_gpu
    assert cfg.auto_scale_lr.base_batch_size == CVT_GPUS * per_gpu  # lr scales with the batch
    sampler = cfg.train_dataloader.sampler.type
    assert sampler == ('RepeatAugSampler' if repeated_aug else 'DefaultSampler')
    # which parameters decay: checked on the parameters of CvT*-LS-13 below
    assert cfg.optim_wrapper.paramwise_cfg == load('cvt-ls-13_in1k').optim_wrapper.paramwise_cfg
    check_classification_augmentation(cfg, size, int(size / 0.875), centre_crop)


def test_cvt_ls_weight_decay_falls_on_the_official_parameters():
    """lib/optim/build.py set_wd with WITHOUT_WD_LIST ['bn', 'bias', 'ln']: no decay on the
    parameters of every LayerNorm / BatchNorm, on every '.bias', on no_weight_decay()'s
    cls_token and pos_embed."""
    model = build_classifier(f'{CONFIGS}/cvt-ls-13_in1k.py')
    decay = decay_of_each_parameter(model, load('cvt-ls-13_in1k').optim_wrapper)
    norms = {f'{m}.{n}' for m, module in model.named_modules()
             if isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm2d))
             for n, _ in module.named_parameters(recurse=False)}
    assert norms and any(n.endswith('cls_token') for n in decay)
    for name, value in decay.items():
        skip = (name in norms or name.endswith('.bias') or 'cls_token' in name
                or 'pos_embed' in name)
        assert value == (0.0 if skip else 0.05), name


def cvt_official_lr(epoch, lr):
    """timm 0.3.2 CosineLRScheduler(t_initial=300, lr_min=1e-5, warmup_t=5,
    warmup_lr_init=1e-6) at epoch `epoch` (CvT calls step(epoch) once per epoch): linear from
    1e-6 in epochs 0-4 (towards lr at epoch 5), then the cosine of all 300 epochs from 0."""
    if epoch < CVT['warmup_epochs']:
        return CVT['warmup_lr'] + epoch * (lr - CVT['warmup_lr']) / CVT['warmup_epochs']
    progress = epoch / CVT['epochs']
    return CVT['min_lr'] + (lr - CVT['min_lr']) * (1 + math.cos(math.pi * progress)) / 2


@pytest.mark.parametrize('config', ['cvt-ls-13_in1k', 'cvt-ls-21_in1k'])
def test_cvt_ls_schedule_is_the_official_one(config):
    cfg = load(config)
    lr = cfg.optim_wrapper.optimizer.lr
    steps = 3
    ours = lr_per_iteration(cfg, 300 * steps, steps)
    per_epoch = [ours[e * steps:(e + 1) * steps] for e in range(300)]
    assert all(len(set(lrs)) == 1 for lrs in per_epoch)  # constant within an epoch
    ours = [lrs[0] for lrs in per_epoch]
    for epoch in range(CVT['warmup_epochs']):
        assert ours[epoch] == pytest.approx(cvt_official_lr(epoch, lr), rel=1e-9), epoch
    assert ours[CVT['warmup_epochs']] == pytest.approx(lr, rel=1e-9)
    # Deliberate (docs/imagenet.md): the cosine over the last 295 epochs from the peak
    gaps = [abs(ours[e] - cvt_official_lr(e, lr)) for e in range(5, 300)]
    assert 0.01 * lr < max(gaps) <= COSINE_GAP * lr
    assert ours[-1] == pytest.approx(CVT['min_lr'], rel=0.01)


# ---- character LM: transformer-ls autoregressive/launch/{enwik8,text8}-*-phase{1,2,3}.sh ----
# fairseq-train --arch transformer-ls --pre-ln --use-gelu --d-model 512 --n-head 8
# --d-inner 2048 --window-len 512 --chunk-size 16 --chunk-rank 1 --validate-interval-updates
# 1000 --batch-size-valid 32 --seed 2 --fp16 --optimizer adam --lr-scheduler fixed; fairseq's
# Adam (betas 0.9 / 0.999, eps 1e-8) decays every parameter, decoupled (AdamW); --clip-norm
# left at fairseq's default 0 (no clipping). --mem-len = --tokens-per-sample. 8 GPUs.
LM_RUNS = {  # config: (data, layers, lr, warm-up updates, updates, streams per GPU,
    #                    --update-freq, tokens per block, dropout, weight decay, starts from)
    'ls-lm-12l_8xb4-430k_enwik8': ('enwik8', 12, 2.5e-4, 10000, 430000, 4, 1, 2048, 0.2, 0.01,
                                   None),
    'ls-lm-12l_8xb4-50k_enwik8-4k': ('enwik8', 12, 1.25e-4, 5000, 50000, 4, 1, 4096, 0.2, 0.01,
                                     'ls-lm-12l_8xb4-430k_enwik8'),
    'ls-lm-12l_8xb4-50k_enwik8-8k': ('enwik8', 12, 6.25e-5, 5000, 50000, 4, 1, 8192, 0.2, 0.01,
                                     'ls-lm-12l_8xb4-50k_enwik8-4k'),
    'ls-lm-12l_8xb4-430k_text8': ('text8', 12, 5e-4, 10000, 430000, 4, 1, 2048, 0.2, 0.01,
                                  None),
    'ls-lm-12l_8xb4-50k_text8-4k': ('text8', 12, 2.5e-4, 5000, 50000, 4, 1, 4096, 0.2, 0.01,
                                    'ls-lm-12l_8xb4-430k_text8'),
    'ls-lm-12l_8xb2-50k_text8-8k': ('text8', 12, 1.25e-4, 5000, 50000, 2, 1, 8192, 0.2, 0.01,
                                    'ls-lm-12l_8xb4-50k_text8-4k'),
    'ls-lm-30l_8xb4-430k_enwik8': ('enwik8', 30, 2.5e-4, 10000, 430000, 4, 1, 2048, 0.4, 0.1,
                                   None),
    'ls-lm-30l_8xb2x4-50k_enwik8-4k': ('enwik8', 30, 1.25e-4, 5000, 50000, 2, 4, 4096, 0.4, 0.1,
                                       'ls-lm-30l_8xb4-430k_enwik8'),
    'ls-lm-30l_8xb1x4-50k_enwik8-8k': ('enwik8', 30, 6.25e-5, 5000, 50000, 1, 4, 8192, 0.4, 0.1,
                                       'ls-lm-30l_8xb2x4-50k_enwik8-4k'),
}
LM_TESTS = {  # launch/run-eval.sh: batch 1, --tokens-per-sample 256, mem_len 32768
    'ls-lm-12l_enwik8-test': 'ls-lm-12l_8xb4-50k_enwik8-8k',
    'ls-lm-12l_text8-test': 'ls-lm-12l_8xb2-50k_text8-8k',
    'ls-lm-30l_enwik8-test': 'ls-lm-30l_8xb1x4-50k_enwik8-8k',
}


@pytest.mark.parametrize('config', sorted(LM_RUNS))
def test_char_lm_is_the_official_recipe(config):
    (data, layers, lr, _, updates, streams, update_freq, tokens, drop, wd,
     starts_from) = LM_RUNS[config]
    cfg = load(config)
    m = cfg.model
    assert (m.type, m.depth, m.embed_dims, m.num_heads, m.ffn_dims, m.window_size,
            m.segment_size, m.dp_rank, m.mem_len, m.rel_pos, m.drop, m.emb_drop) == (
        'LSCharLM', layers, 512, 8, 2048, 512, 16, 1, tokens, True, drop, drop)
    ow = cfg.optim_wrapper
    assert (ow.type, ow.dtype, ow.get('accumulative_counts', 1)) == (
        'AmpOptimWrapper', 'float16', update_freq)
    assert 'clip_grad' not in ow and 'paramwise_cfg' not in ow
    opt = ow.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, opt.get('eps', 1e-8), tuple(opt.betas)) == (
        'AdamW', lr, wd, 1e-8, (0.9, 0.999))
    # iterations count micro-batches: --update-freq of them make one update
    assert (cfg.train_cfg.type, cfg.train_cfg.max_iters, cfg.train_cfg.val_interval) == (
        'IterBasedTrainLoop', updates * update_freq, 1000 * update_freq)
    train, val = cfg.train_dataloader, cfg.val_dataloader
    assert (train.batch_size, train.dataset.batch_size, train.dataset.seq_len) == (
        streams, streams, tokens)
    assert (val.batch_size, val.dataset.batch_size, val.dataset.seq_len) == (32, 32, tokens)
    assert not train.sampler.shuffle  # truncated BPTT: each stream's next block
    for loader in (train, val, cfg.test_dataloader):
        assert loader.dataset.data_root == f'data/{data}'
    assert cfg.randomness.seed == 2
    if starts_from is None:
        assert cfg.load_from is None
    else:  # --finetune-from-model: the previous phase's weights, fresh optimizer and schedule
        assert cfg.load_from.startswith(f'work_dirs/{starts_from}/')


@pytest.mark.parametrize('config', sorted(LM_TESTS))
def test_char_lm_evaluation_is_the_official_one(config):
    cfg = load(config)
    # the last training phase's model with the evaluation memory
    assert dict(cfg.model) == {**load(LM_TESTS[config]).model, 'eval_mem_len': 32768}
    test = cfg.test_dataloader
    assert (test.batch_size, test.dataset.batch_size, test.dataset.seq_len,
            test.dataset.split) == (1, 1, 256, 'test')


def fairseq_fixed_lr(update, lr, warmup):
    """fairseq's 'fixed' scheduler with --warmup-updates: update k (from 1) runs with
    lr x k / warmup during the warm-up, then lr for good (no decay)."""
    return lr * min(update, warmup) / warmup


@pytest.mark.parametrize('config', [
    'ls-lm-12l_8xb4-430k_enwik8', 'ls-lm-12l_8xb4-50k_enwik8-4k', 'ls-lm-12l_8xb4-430k_text8',
    'ls-lm-30l_8xb2x4-50k_enwik8-4k', 'ls-lm-30l_8xb1x4-50k_enwik8-8k'])
def test_char_lm_schedule_is_fairseq_fixed_with_warmup(config):
    _, _, lr, warmup, _, _, update_freq, *_ = LM_RUNS[config]
    cfg = load(config)
    iterations = (warmup + 50) * update_freq
    ours = lr_per_iteration(cfg, iterations, epoch_length=iterations)
    for it in range(update_freq - 1, iterations, update_freq):  # the iterations that update
        update = (it + 1) // update_freq
        assert ours[it] == pytest.approx(fairseq_fixed_lr(update, lr, warmup), rel=1e-6), it
