# Long-Short Transformer on LRA ListOps (Zhu et al. 2021, Table 1: 37.50 at w, r = 8, 32) with the
# official recipe (NVIDIA/transformer-ls lra/run_listops.sh, run_tasks.py defaults): 2048
# positions, no dropout; AdamW lr 1e-4, eps 1e-6, no weight decay; batch 32; 5000 steps of
# torch's one-cycle schedule (1000 warm-up steps, linear), validation every 50 steps.
# Data: the LRA release's listops-1000/basic_{train,val,test}.tsv (2000 tokens at most).
_base_ = ['../_base_/models/ls_lra.py', '../_base_/lra_runtime.py']

data_root = 'data/lra_release/listops-1000'
dataset = dict(type='ListOpsDataset', data_root=data_root, max_length=2000)
lr, weight_decay = 1e-4, 0.
max_iters, warmup_iters, val_interval = 5000, 1000, 50

model = dict(num_classes=10, max_len=2048)
loader = dict(batch_size=32, num_workers=2, persistent_workers=True,
              collate_fn=dict(type='lra_collate'))
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(dataset, split='train'), **loader)
val_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(dataset, split='val'), **loader)
test_dataloader = dict(sampler=dict(type='DefaultSampler', shuffle=False),
                       dataset=dict(dataset, split='test'), **loader)

# torch's OneCycleLR as run_tasks.py uses it: lr from lr/25 up to lr at step warmup_iters - 1,
# then down to lr/25/1e4, linearly; with Adam it also sets beta1 to 0.95 and moves it linearly to
# 0.85 and back (the two PolyMomentum of power 1).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, betas=(0.95, 0.999), eps=1e-6,
                   weight_decay=weight_decay))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr, total_steps=max_iters,
         pct_start=warmup_iters / max_iters, anneal_strategy='linear', by_epoch=False),
    dict(type='PolyMomentum', eta_min=0.85, power=1., by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyMomentum', eta_min=0.95, power=1., by_epoch=False, begin=warmup_iters - 1,
         end=max_iters),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
randomness = dict(seed=1234)
