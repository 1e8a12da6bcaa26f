# CvT*-LS-21 at 224 with the official CvT-21 recipe (cvt-21-224x224.yaml): 8 GPUs x 128 images,
# lr 1.25e-4 per GPU (1e-3), weight decay 0.1, repeated-augmentation sampler; otherwise as
# CvT*-LS-13. Paper: 32.1 M, 7.9 G, 82.7 top-1.
_base_ = './cvt-ls-13_in1k.py'
model = dict(backbone=dict(arch='21'))
train_dataloader = dict(batch_size=128, sampler=dict(_delete_=True, type='RepeatAugSampler'))
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.1))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 1e-3, by_epoch=True, end=6),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
auto_scale_lr = dict(base_batch_size=1024)
