# CvT*-LS-13 on ImageNet-1K at 224 with the official CvT-13 recipe (microsoft/CvT
# experiments/imagenet/cvt/cvt-13-224x224.yaml; no CvT*-LS recipe was released): 8 GPUs x 256
# images, AdamW lr 2.5e-4 per GPU (2e-3), weight decay 0.05 with none on norms, biases, class
# token and position embeddings; 300 epochs, 5 warm-up epochs from 1e-6, cosine to 1e-5, stepped
# per epoch;
# RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, random erasing 0.25;
# bicubic resize 256 + centre crop 224 at test; AMP (pass --amp). Paper: 20.3 M, 4.9 G, 81.9.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/imagenet_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CvTLS', arch='13', img_size=224, window_size=7, dp_rank=8,
                  drop_path_rate=0.1),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=384,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
train_dataloader = dict(batch_size=256, drop_last=True)  # as the official loader
optim_wrapper = dict(
    optimizer=dict(lr=2e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={'.cls_token': dict(decay_mult=0.0), '.pos_embed': dict(decay_mult=0.0)}),
)
# timm's cosine scheduler of the official code, stepped once per epoch: epochs 0-4 climb from 1e-6
# (mmengine's LinearLR reaches its peak at end - 1, so end=6 puts the peak at epoch 5).
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 2e-3, by_epoch=True, end=6),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
auto_scale_lr = dict(base_batch_size=2048)
