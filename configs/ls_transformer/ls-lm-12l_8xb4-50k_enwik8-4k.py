# Phase 2 of 3 (official enwik8-base-phase2.sh): blocks and memory of 4096 tokens, Adam
# 1.25e-4 after 5k warm-up steps, 50k steps, starting from phase 1's weights.
_base_ = './ls-lm-12l_8xb4-430k_enwik8.py'

model = dict(mem_len=4096)
train_dataloader = dict(dataset=dict(seq_len=4096))
val_dataloader = dict(dataset=dict(seq_len=4096))
optim_wrapper = dict(optimizer=dict(lr=1.25e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=2e-4, by_epoch=False, begin=0, end=5000),
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=5000),
]
train_cfg = dict(max_iters=50000)
load_from = 'work_dirs/ls-lm-12l_8xb4-430k_enwik8/iter_430000.pth'
