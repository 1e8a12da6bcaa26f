# Long-Short Transformer on LRA Text: byte-level IMDb sentiment, 4000 bytes (Zhu et al. 2021,
# Table 1: 66.01 at w, r = 8, 32). Official recipe (lra/run_text.sh, run_tasks.py defaults): the
# ListOps recipe with 2 classes, 4096 positions, weight decay 0.01, 20000 steps with 8000 warm-up
# steps, validation every 500 steps on the IMDb test split (IMDb has no validation split; LRA
# validates on test). Data: the IMDb release, aclImdb/{train,test}/{pos,neg}/*.txt.
_base_ = './ls-lra_listops.py'

data_root = 'data/aclImdb'
dataset = dict(_delete_=True, type='IMDbDataset', data_root=data_root, max_length=4000)
lr, max_iters, warmup_iters, val_interval = 1e-4, 20000, 8000, 500

model = dict(num_classes=2, max_len=4096)
train_dataloader = dict(dataset=dict(dataset, split='train'))
val_dataloader = dict(dataset=dict(dataset, split='test'))
test_dataloader = dict(dataset=dict(dataset, split='test'))
optim_wrapper = dict(optimizer=dict(weight_decay=0.01))
param_scheduler = [
    dict(type='OneCycleLR', eta_max=lr, total_steps=max_iters,
         pct_start=warmup_iters / max_iters, anneal_strategy='linear', by_epoch=False),
    dict(type='PolyMomentum', eta_min=0.85, power=1., by_epoch=False, begin=0, end=warmup_iters),
    dict(type='PolyMomentum', eta_min=0.95, power=1., by_epoch=False, begin=warmup_iters - 1,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
