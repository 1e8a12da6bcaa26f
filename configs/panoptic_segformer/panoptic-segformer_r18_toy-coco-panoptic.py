# CPU demo on the synthetic toy COCO-panoptic set. REDUCED model, trained from scratch (no
# pretrained weights offline): ResNet-18 at half width (base_channels 32), width 64, 30 thing
# queries, 1 encoder / 2 location-decoder layers, 1 thing + 2 stuff mask-decoder layers, FFN 128;
# AdamW lr 1e-3 with the backbone at x1 (the sampling offsets and reference points keep the
# official x0.1), grad clip 1.0, batch 4, 100 epochs (step at 80): 1000 iterations, about
# 3.5 minutes on 2 CPU cores.
# Data: python tools/misc/make_toy_data.py --format coco-panoptic --out data/toy_coco_panoptic
_base_ = ['./panoptic-segformer_r50_coco-panoptic-12e.py']

embed_dims = 64
model = dict(
    num_queries=30,
    backbone=dict(depth=18, base_channels=32, frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256], out_channels=embed_dims,
              norm_cfg=dict(type='GN', num_groups=16)),
    encoder=dict(num_layers=1, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=128, ffn_drop=0.0))),
    decoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, dropout=0.0),
        cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=128, ffn_drop=0.0))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(
        num_things_classes=5,
        num_stuff_classes=4,
        embed_dims=embed_dims,
        thing_mask_decoder=dict(num_layers=1, embed_dims=embed_dims, num_heads=4),
        stuff_mask_decoder=dict(num_layers=2, embed_dims=embed_dims, num_heads=4)),
    test_cfg=dict(max_per_img=20))

optim_wrapper = dict(
    optimizer=dict(lr=1e-3),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
max_epochs = 100
train_cfg = dict(max_epochs=max_epochs, val_interval=25)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[80], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=25, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)  # the README's figures are reproducible
log_processor = dict(window_size=5)

# ---- data: the built-in synthetic toy set, 128 x 160 images, 5 thing + 4 stuff classes with
# real COCO category ids / names, in mmdet's coco_panoptic layout.
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
    dict(type='RandomChoiceResize', scales=[(144, 112), (160, 128), (176, 144)],
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
