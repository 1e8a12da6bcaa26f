# Cityscapes as the official SegFormer code trains it: 1024x1024 crops from scale (2048, 1024);
# test at 2048x1024 (the model config picks sliding-window inference), plus multi-scale + flip TTA.
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes'
crop_size = (1024, 1024)
img_scale = (2048, 1024)
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
# --tta (tools/test.py): the test pipeline at these ratios of its scale, each view also flipped
# (official MultiScaleFlipAug img_ratios); a config inheriting this tests at its own scale.
tta_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
train_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
# tools/test.py also runs the official cityscapesscripts evaluation (labelIds, instance-level
# ignore) next to mIoU/mAcc/aAcc.
test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='CityscapesMetric', output_dir='work_dirs/format_results', keep_results=False),
]
# The recipe's total batch: 8 GPUs x 1 image (informative; tools/train.py does not rescale lr).
auto_scale_lr = dict(enable=False, base_batch_size=8)
