# SegFormer-B0 on the built-in toy ADE20K-format data (tools/misc/make_toy_data.py), for a CPU
# demo of a few minutes: 128x128 crops, 500 iterations, from scratch (no ImageNet weights),
# a shorter warm-up and a higher learning rate than the 160k-iteration recipe. Data: 200 train /
# 50 val images (tools/run_demo.sh generates them): with 40 / 10 a single image moved the mean
# and the end point of this short, chaotic run scattered by points (docs/toy_data.md).
_base_ = './mit-b0_ade20k.py'
data_root = 'data/toy/ade20k/ADEChallengeData2016'
crop_size = (128, 128)
img_scale = (512, 128)
max_iters = 500
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='ValidateSegLabels', num_classes=150),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignedResize', scale=img_scale, size_divisor=32),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=None))
train_dataloader = dict(
    batch_size=4, num_workers=2,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=50, end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=max_iters // 2, max_keep_ckpts=2, save_best=None))
env_cfg = dict(cudnn_benchmark=False)
