# Long-Short Transformer on LRA Retrieval: does one ACL Anthology paper cite the other, byte
# level, 4096 bytes each (Zhu et al. 2021, Table 1: 81.79 at w, r = 8, 32). Official recipe
# (lra/run_retrieval.sh, run_tasks.py defaults): one encoder for both papers (4096 positions),
# the head classifies [x1, x2, x1 * x2, x1 - x2]; dropout 0.1 (attention weights too), weight
# decay 0.01, 30000 steps with 8000 warm-up steps, validation every 300 steps, seed 4096.
# Data: the LRA release's tsv_data/new_aan_pairs.{train,eval,test}.tsv.
_base_ = './ls-lra_listops.py'

data_root = 'data/lra_release/tsv_data'
dataset = dict(_delete_=True, type='AANRetrievalDataset', data_root=data_root, max_length=4096)
lr, max_iters, warmup_iters, val_interval = 1e-4, 30000, 8000, 300

model = dict(num_classes=2, max_len=4096, dual=True, drop=0.1, attn_drop=0.1)
train_dataloader = dict(dataset=dict(dataset, split='train'))
val_dataloader = dict(dataset=dict(dataset, split='eval'))
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
randomness = dict(seed=4096)
