# Causal byte-level LM with Long-Short attention (CausalLSAttention1d) on the toy text of
# tools/misc/make_toy_text.py; reports validation bits per character. See README.md here.
default_scope = 'mmengine'
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

data_file = 'data/toy_text/toy_text.txt'
seq_len = 128
max_iters = 120

model = dict(
    type='LSCharLM', embed_dims=128, depth=2, num_heads=4, window_size=32, segment_size=16,
    dp_rank=1, mlp_ratio=4, max_len=seq_len)

train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ByteTextDataset', data_file=data_file, split='train', seq_len=seq_len,
                 stride=seq_len // 2))
val_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ByteTextDataset', data_file=data_file, split='val', seq_len=seq_len))
val_evaluator = dict(type='BitsPerChar')

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=1e-4),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=max_iters, by_epoch=False),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
work_dir = './work_dirs/ls-char-lm_toy-text'
