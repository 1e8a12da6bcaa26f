# Phase 3 of 3 (official enwik8-base-phase3.sh): blocks and memory of 8192 tokens, Adam
# 6.25e-5, 50k steps. The official run starts from phase 2's best checkpoint (point load_from at
# work_dirs/ls-lm-12l_8xb4-50k_enwik8-4k/best_bpc_iter_*.pth to do the same).
_base_ = './ls-lm-12l_8xb4-50k_enwik8-4k.py'

model = dict(mem_len=8192)
train_dataloader = dict(dataset=dict(seq_len=8192))
val_dataloader = dict(dataset=dict(seq_len=8192))
optim_wrapper = dict(optimizer=dict(lr=6.25e-5))
load_from = 'work_dirs/ls-lm-12l_8xb4-50k_enwik8-4k/iter_50000.pth'
