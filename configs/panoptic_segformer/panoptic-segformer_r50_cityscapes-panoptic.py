# Panoptic SegFormer, ResNet-50, Cityscapes panoptic (19 classes: 8 things, 11 stuff).
# The paper reports no Cityscapes result: model and optimiser are the COCO R-50 recipe; the data
# recipe (multi-scale 0.5-2.0 of 1024 x 2048, 512 x 1024 crops, flip; full-resolution test) and
# the schedule (50 epochs, 8 GPUs x 1 image, step at 40) are a starting point, not tuned here.
# Data: leftImg8bit/ + gtFine/ (with *_gtFine_instanceIds.png) under data/cityscapes, then
#   python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes
# which runs cityscapesscripts' own createPanopticImgs and lays its output out for mmdet
# (data/cityscapes/mmdet_panoptic: COCO's flat layout, see mmseg_ext/datasets/cityscapes_panoptic.py).
_base_ = ['./panoptic-segformer_r50_coco-panoptic-12e.py']

model = dict(bbox_head=dict(num_things_classes=8, num_stuff_classes=11))

data_root = 'data/cityscapes/mmdet_panoptic/'
# label order = the annotation file's category order: things first
metainfo = dict(
    classes=('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle', 'road',
             'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
             'vegetation', 'terrain', 'sky'),
    thing_classes=('person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle'),
    stuff_classes=('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
                   'traffic sign', 'vegetation', 'terrain', 'sky'),
    palette=[(220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100),
             (0, 0, 230), (119, 11, 32), (128, 64, 128), (244, 35, 232), (70, 70, 70),
             (102, 102, 156), (190, 153, 153), (153, 153, 153), (250, 170, 30), (220, 220, 0),
             (107, 142, 35), (152, 251, 152), (70, 130, 180)])

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(512, 1024), crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=metainfo,
    ann_file='annotations/panoptic_train.json',
    data_prefix=dict(img='train/', seg='annotations/panoptic_train/'),
    pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    data_root=data_root, metainfo=metainfo,
    ann_file='annotations/panoptic_val.json',
    data_prefix=dict(img='val/', seg='annotations/panoptic_val/'),
    pipeline=test_pipeline))
test_dataloader = val_dataloader
# PQ, and COCO-style box / mask AP of the thing segments (not the official Cityscapes AP)
val_evaluator = [
    dict(type='CocoPanopticMetric',
         ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/'),
    dict(type='CocoMetric',
         ann_file=data_root + 'annotations/instances_val.json',
         metric=['bbox', 'segm']),
]
test_evaluator = val_evaluator

max_epochs = 50
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[40], gamma=0.1)
]
