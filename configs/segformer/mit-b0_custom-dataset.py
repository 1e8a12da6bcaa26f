# SegFormer-B0 on your own data (docs/datasets.md). Copy this file and edit the block below;
# everything else follows from it. Layout under data_root:
#   img/train/*.jpg  ann/train/*.png   (a mask per image, same name, one class index per pixel)
#   img/val/*.jpg    ann/val/*.png
# Check the data against this config first: python tools/misc/check_dataset.py THIS_CONFIG
# Try it on generated data: python tools/misc/make_toy_data.py --format custom --out data/my_dataset
_base_ = [
    '../_base_/models/segformer_mit-b0.py', '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_160k_segformer.py'
]

# ---------------------------------------------------------------- your data: edit this block
data_root = 'data/my_dataset'
# Mask value i is classes[i]. With a background class, list it first (value 0) and keep
# reduce_zero_label = False. If value 0 means "unlabelled" instead, leave it out of the
# classes and set reduce_zero_label = True: then value 1 is classes[0], 2 is classes[1], ...
classes = ('background', 'road', 'car')
palette = [[0, 0, 0], [128, 64, 128], [0, 0, 142]]  # one RGB colour per class
reduce_zero_label = False
ignore_index = 255  # mask value that is neither learnt nor scored (e.g. "unlabelled")
img_suffix = '.jpg'
seg_map_suffix = '.png'
crop_size = (512, 512)  # training crops
img_scale = (2048, 512)  # images are resized around this scale (short side 512 at test time)
# ImageNet-1k MiT-B0 weights, downloaded on first use to ~/.cache/torch/hub/checkpoints/.
# Offline: fetch the file elsewhere and put it there (same name), or set a local path here;
# None trains from scratch (much worse on real data).
pretrained = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/'
              'mit_b0_20220624-7e0fe6dd.pth')
# ---------------------------------------------------------------- derived from the block above
num_classes = len(classes)
metainfo = dict(classes=classes, palette=palette)
model = dict(
    data_preprocessor=dict(size=crop_size, seg_pad_val=ignore_index),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained) if pretrained else None),
    decode_head=dict(num_classes=num_classes, ignore_index=ignore_index))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label comes from the dataset
    dict(type='ValidateSegLabels'),  # class count and ignore_index come from the dataset
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75, ignore_index=ignore_index),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='AlignedResize', scale=img_scale, size_divisor=32),
    dict(type='LoadAnnotations'),
    dict(type='ValidateSegLabels'),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
               reduce_zero_label=reduce_zero_label, ignore_index=ignore_index)
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset, data_prefix=dict(img_path='img/train', seg_map_path='ann/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset, data_prefix=dict(img_path='img/val', seg_map_path='ann/val'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=ignore_index)
test_evaluator = val_evaluator
