# Phase 2 of 3 (official enwik8-large-phase2.sh): blocks and memory of 4096 tokens, 2 streams
# per GPU and gradients accumulated over 4 steps, Adam 1.25e-4 after 5k warm-up steps, 50k
# steps, starting from phase 1's weights (the official run loads its best checkpoint).
_base_ = './ls-lm-30l_8xb4-430k_enwik8.py'

model = dict(mem_len=4096)
train_dataloader = dict(batch_size=2, dataset=dict(seq_len=4096, batch_size=2))
val_dataloader = dict(dataset=dict(seq_len=4096))
optim_wrapper = dict(optimizer=dict(lr=1.25e-4), accumulative_counts=4)
# Iterations count micro-batches: 5k warm-up updates and 50k updates are 4x as many iterations.
param_scheduler = [
    dict(type='LinearLR', start_factor=5e-5, by_epoch=False, begin=0, end=20000),
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=20000),
]
train_cfg = dict(max_iters=200000, val_interval=4000)
load_from = 'work_dirs/ls-lm-30l_8xb4-430k_enwik8/iter_430000.pth'
