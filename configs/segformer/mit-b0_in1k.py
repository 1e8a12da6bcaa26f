# MiT-B0 as an ImageNet-1K classifier (mmpretrain ImageClassifier): the SegFormer encoder, global
# average pooling of the last stage's (LayerNorm-ed) tokens, a linear head. Recipe of the
# SegFormer paper (Sec. 4.1, pre-training as PVT) in the official PVTv2 code
# (whai362/PVT classification/main.py + configs/pvt_v2): 8 GPUs x 128 images, AdamW lr 1e-3
# (5e-4 x 1024 / 512), weight decay 0.05 with none on norms, biases and other 1-D parameters,
# 300 epochs, 5 warm-up epochs from 1e-6, cosine to 1e-5; DeiT augmentation (RandAugment
# m9-mstd0.5, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing 0.25, repeated
# augmentation); drop path 0.1; bicubic resize 256 + centre crop 224 at test.
# The checkpoint initialises the segmentation configs directly:
#   --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/mit-b0_in1k/epoch_300.pth
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/imagenet_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MiT', arch='b0', out_indices=(3, ), drop_path_rate=0.1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=256,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
train_dataloader = dict(batch_size=128, sampler=dict(_delete_=True, type='RepeatAugSampler'))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True),
]
