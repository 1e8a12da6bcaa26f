# Phase 2 of 3 (official text8-base-phase2.sh): the enwik8 phase 2 (blocks and memory of 4096
# tokens, 5k warm-up steps, 50k steps) on text8 with Adam 2.5e-4, from phase 1's weights.
_base_ = './ls-lm-12l_8xb4-50k_enwik8-4k.py'

data_root = 'data/text8'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
optim_wrapper = dict(optimizer=dict(lr=2.5e-4))
load_from = 'work_dirs/ls-lm-12l_8xb4-430k_text8/iter_430000.pth'
