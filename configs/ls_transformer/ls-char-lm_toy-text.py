# The causal LS character LM, small, on the toy text of tools/misc/make_toy_text.py split by
# tools/misc/prepare_char_lm_data.py (the enwik8 layout); reports bits per character over the
# whole validation split with the memory carried across blocks. See README.md here.
_base_ = ['../_base_/char_lm_runtime.py']

data_root = 'data/toy_text'
seq_len = 128
max_iters = 400

model = dict(
    type='LSCharLM', embed_dims=128, depth=2, num_heads=4, ffn_dims=512, window_size=32,
    segment_size=16, dp_rank=1, mem_len=128, rel_pos=True)

stream_loader = dict(num_workers=0, persistent_workers=False,
                     sampler=dict(type='DefaultSampler', shuffle=False),
                     collate_fn=dict(type='default_collate'))
train_dataloader = dict(  # 16 streams, the next block of each per iteration
    **stream_loader, batch_size=16,
    dataset=dict(type='CharLMDataset', data_root=data_root, split='train', seq_len=seq_len,
                 batch_size=16))
val_dataloader = dict(  # one stream: the whole split in order, memory carried
    **stream_loader, batch_size=1,
    dataset=dict(type='CharLMDataset', data_root=data_root, split='valid', seq_len=seq_len,
                 batch_size=1))
test_dataloader = dict(
    **stream_loader, batch_size=1,
    dataset=dict(type='CharLMDataset', data_root=data_root, split='test', seq_len=seq_len,
                 batch_size=1))

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='AdamW', lr=3e-3, weight_decay=0.01),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=max_iters, eta_min=1e-4),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
work_dir = './work_dirs/ls-char-lm_toy-text'
