# Runtime shared by the Long Range Arena configs (mmengine Runner, iteration-based, as the
# official run_tasks.py): validation accuracy picks the best checkpoint, which tools/test.py
# evaluates on the test split.
default_scope = 'mmengine'
custom_imports = dict(imports=['mmseg_ext.registry.ls'], allow_failed_imports=False)

val_evaluator = dict(type='ClassificationAccuracy')
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, max_keep_ckpts=1,
                    save_best='accuracy', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# RNG states travel in checkpoints, so --resume continues exactly (see docs/compat.md).
custom_hooks = [dict(type='RNGStateHook')]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
