# Official SegFormer recipe: AdamW 6e-5, wd 0.01, head lr x10, no decay on norms; poly decay
# (power 1) over all 160k iterations, multiplied during the first 1500 by a linear warm-up from
# 1e-6 (mmcv 1.x semantics): lr(i) = lr * (1 - i / 160000) * (1e-6 + (1 - 1e-6) * i / 1500).
# mmengine multiplies the factors of overlapping schedulers, and its factors reach their end
# value at ``end - 1``: hence end=1501 and end=160001 (tests/test_segformer_recipes.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'pos_block': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.),
        'head': dict(lr_mult=10.),
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=0, end=160001),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160000, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 4000 iterations as official; we keep the last 3 and the best mIoU.
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000, max_keep_ckpts=3,
                    save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
