# SegFormer-B0 on Cityscapes at short side 768 (paper Table 3): 768x768 crops from scale
# (1536, 768), sliding-window test 768x768 with stride 768 at 1536x768.
_base_ = './mit-b0_cityscapes.py'
short_side = 768
crop_size = (768, 768)
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
model = dict(data_preprocessor=dict(size=crop_size), test_cfg=dict(_delete_=True, mode='slide', crop_size=crop_size, stride=(768, 768)))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
