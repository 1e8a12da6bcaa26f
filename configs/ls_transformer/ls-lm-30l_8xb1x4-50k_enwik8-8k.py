# Phase 3 of 3 (official enwik8-large-phase3.sh): blocks and memory of 8192 tokens, 1 stream
# per GPU and gradients accumulated over 4 steps, Adam 6.25e-5, 50k updates.
_base_ = './ls-lm-30l_8xb2x4-50k_enwik8-4k.py'

model = dict(mem_len=8192)
train_dataloader = dict(batch_size=1, dataset=dict(seq_len=8192, batch_size=1))
val_dataloader = dict(dataset=dict(seq_len=8192))
optim_wrapper = dict(optimizer=dict(lr=6.25e-5))
load_from = 'work_dirs/ls-lm-30l_8xb2x4-50k_enwik8-4k/iter_200000.pth'
