# Runtime shared by the character-level LM configs (mmengine Runner, iteration-based, as the
# official fairseq truncated-BPTT training): validation bits per character picks the best
# checkpoint; tools/test.py evaluates the test split with the memory carried across blocks.
default_scope = 'mmengine'
custom_imports = dict(imports=['mmseg_ext.registry.ls'], allow_failed_imports=False)

val_evaluator = dict(type='BitsPerChar')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=1,
                    save_best='bpc', rule='less'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# RNG states travel in checkpoints, so --resume continues exactly (see docs/compat.md); the
# LM's memory does not (a resumed run restarts it from zeros).
custom_hooks = [dict(type='RNGStateHook')]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=2)  # the official launch scripts' --seed 2
