# The ListOps model on the built-in toy ListOps (tools/misc/make_toy_lra.py: expressions of depth
# <= 3 with <= 5 arguments, 4000 training samples) for a CPU run of a few minutes: the paper's
# model (2 blocks, C=64, w, r = 8, 32), a higher learning rate and a shorter one-cycle schedule.
_base_ = './ls-lra_listops.py'

data_root = 'data/toy_lra/lra_release/listops-1000'
dataset = dict(data_root=data_root)
lr, max_iters, warmup_iters, val_interval = 3e-3, 1000, 100, 1000

loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(dataset=dict(dataset, split='train'), **loader)
val_dataloader = dict(dataset=dict(dataset, split='val'), **loader)
test_dataloader = dict(dataset=dict(dataset, split='test'), **loader)
optim_wrapper = dict(optimizer=dict(lr=lr))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr, total_steps=max_iters,
         pct_start=warmup_iters / max_iters, anneal_strategy='linear', by_epoch=False),
    dict(type='PolyMomentum', eta_min=0.85, power=1., by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyMomentum', eta_min=0.95, power=1., by_epoch=False, begin=warmup_iters - 1,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=val_interval))
randomness = dict(seed=0)
