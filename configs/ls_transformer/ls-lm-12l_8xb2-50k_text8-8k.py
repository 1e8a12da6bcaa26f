# Phase 3 of 3 (official text8-base-phase3.sh): the enwik8 phase 3 (blocks and memory of 8192
# tokens, 50k steps) on text8 with 2 streams per GPU and Adam 1.25e-4. The official run starts
# from phase 2's best checkpoint (work_dirs/ls-lm-12l_8xb4-50k_text8-4k/best_bpc_iter_*.pth).
_base_ = './ls-lm-12l_8xb4-50k_enwik8-8k.py'

data_root = 'data/text8'
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root, batch_size=2))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
optim_wrapper = dict(optimizer=dict(lr=1.25e-4))
load_from = 'work_dirs/ls-lm-12l_8xb4-50k_text8-4k/iter_50000.pth'
