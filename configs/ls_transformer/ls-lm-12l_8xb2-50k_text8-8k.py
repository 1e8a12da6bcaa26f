# Phase 3 of 3 (official text8-base-phase3.sh): blocks and memory of 8192 tokens, 2 streams
# per GPU, Adam 1.25e-4, 50k steps. The official run starts from phase 2's best checkpoint
# (point load_from at work_dirs/ls-lm-12l_8xb4-50k_text8-4k/best_bpc_iter_*.pth to do the
# same).
_base_ = './ls-lm-12l_8xb4-50k_text8-4k.py'

model = dict(mem_len=8192)
train_dataloader = dict(batch_size=2, dataset=dict(seq_len=8192, batch_size=2))
val_dataloader = dict(dataset=dict(seq_len=8192))
optim_wrapper = dict(optimizer=dict(lr=1.25e-4))
load_from = 'work_dirs/ls-lm-12l_8xb4-50k_text8-4k/iter_50000.pth'
