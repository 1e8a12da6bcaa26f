# Panoptic SegFormer, ResNet-50, COCO panoptic, 12 epochs (Li et al., CVPR 2022).
# Official recipe: AdamW lr 1.4e-4, wd 1e-4, lr x0.1 for the backbone, the sampling offsets and
# the reference points, grad clip 0.1, 8 GPUs x 1 image, step at epoch 8.
_base_ = ['../_base_/datasets/coco_panoptic.py']

default_scope = 'mmdet'
custom_imports = dict(imports=['mmseg_ext.registry.panoptic'], allow_failed_imports=False)

num_things_classes = 80
num_stuff_classes = 53
embed_dims = 256
# Hungarian matching costs of the location decoder: focal 2, L1 5 (xywh), GIoU 2.
location_costs = [
    dict(type='FocalLossCost', weight=2.0),
    dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
    dict(type='IoUCost', iou_mode='giou', weight=2.0),
]

model = dict(
    type='PanopticSegFormer',
    num_queries=300,
    with_box_refine=True,
    as_two_stage=False,
    num_feature_levels=4,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1,
        pad_mask=True,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    # C3-C5 -> 256 channels with GroupNorm, plus a stride-64 level (3x3 stride-2 conv on C5).
    neck=dict(
        type='ChannelMapper',
        in_channels=[512, 1024, 2048],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=4),
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_levels=4, num_heads=8, num_points=4,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=1024, ffn_drop=0.1))),
    decoder=dict(
        num_layers=6,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=8, dropout=0.1,
                               batch_first=True),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=4, num_heads=8, num_points=4,
                                batch_first=True),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=1024, ffn_drop=0.1)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=-0.5),
    bbox_head=dict(
        type='PanopticSegFormerHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0),
        thing_mask_decoder=dict(type='PanSegMaskDecoder', num_layers=4, embed_dims=embed_dims,
                                num_heads=8, num_levels=3, self_attn=False),
        stuff_mask_decoder=dict(type='PanSegMaskDecoder', num_layers=6, embed_dims=embed_dims,
                                num_heads=8, num_levels=3, self_attn=True),
        num_mask_levels=3,
        loss_mask=dict(type='DiceLoss', use_sigmoid=False, activate=False, naive_dice=False,
                       eps=1e-6, loss_weight=2.0),
        loss_stuff_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                            loss_weight=4.0)),
    train_cfg=dict(
        assigner=dict(type='HungarianAssigner', match_costs=location_costs),
        query_filter=dict(
            type='PanSegQueryFilter',
            assigner=dict(type='HungarianAssigner', match_costs=location_costs),
            max_rounds=3),
        # official HungarianAssigner_multi_info: the focal cost weight doubled (2 -> 4) and a
        # Dice cost on the final masks at stride 8 (eps 1e-3 on each squared sum)
        mask_assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=4.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0),
                dict(type='PanSegDiceCost', weight=2.0, eps=1e-3),
            ])),
    test_cfg=dict(
        max_per_img=100,
        merging=dict(type='MaskWiseMerging', score_thr=0.25, overlap_thr_thing=0.4,
                     overlap_thr_stuff=0.2, mask_thr=0.5)))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2),
    paramwise_cfg=dict(custom_keys={
        'backbone': dict(lr_mult=0.1),
        'sampling_offsets': dict(lr_mult=0.1),
        'reference_points': dict(lr_mult=0.1),
    }))

max_epochs = 12
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8], gamma=0.1)
]
# 8 GPUs x 1 image
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
