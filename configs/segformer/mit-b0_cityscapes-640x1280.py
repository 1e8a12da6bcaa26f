# SegFormer-B0 on Cityscapes at short side 640 (paper Table 3, real-time setting):
# train crops 640x1280 from scale (1280, 640), whole-image test at 1280x640.
_base_ = './mit-b0_cityscapes.py'
short_side = 640
crop_size = (short_side, 2 * short_side)
img_scale = (2 * short_side, short_side)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='ValidateSegLabels', num_classes=19),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignedResize', scale=img_scale, size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(_delete_=True, mode='whole'))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
