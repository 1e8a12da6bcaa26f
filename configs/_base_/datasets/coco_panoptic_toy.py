# The built-in synthetic COCO-panoptic toy set (tools/misc/make_toy_data.py --format
# coco-panoptic --out data/toy_coco_panoptic): 128 x 160 images, 5 thing + 4 stuff classes with
# real COCO category ids/names, mmdet's coco_panoptic layout.
_base_ = ['./coco_panoptic.py']

data_root = 'data/toy_coco_panoptic/'
metainfo = dict(
    classes=('person', 'car', 'stop sign', 'sports ball', 'kite', 'road', 'sky-other-merged',
             'grass-merged', 'wall-other-merged'),
    thing_classes=('person', 'car', 'stop sign', 'sports ball', 'kite'),
    stuff_classes=('road', 'sky-other-merged', 'grass-merged', 'wall-other-merged'),
    palette=[(220, 20, 60), (0, 0, 142), (220, 220, 0), (255, 128, 0), (0, 180, 180),
             (128, 64, 128), (70, 130, 180), (107, 142, 35), (102, 102, 156)])

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomChoiceResize', scales=[(160, 128), (180, 144), (200, 160)],
         keep_ratio=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoPanopticMetric',
         ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/'),
    dict(type='CocoMetric',
         ann_file=data_root + 'annotations/instances_val2017.json',
         metric=['bbox', 'segm']),
]
test_evaluator = val_evaluator
