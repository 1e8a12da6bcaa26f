# ViL-LS-Medium on ImageNet-1K at 224, the recipe of the official launch script
# (NVIDIA/transformer-ls imagenet/launch/train/train_medium_224.sh + config/msvit.yaml):
# 8 GPUs x 128 images, AdamW lr 8e-4, weight decay 0.1, drop path 0.3, 300 epochs, 5 warm-up
# epochs from 0.002 x lr, cosine to 1e-6; RandAugment m9-mstd0.5, Mixup 0.8 / CutMix 1.0 (one of
# the two per batch), label smoothing 0.1, random erasing 0.25; bicubic resize 256 + centre crop
# 224 at test; AMP (pass --amp); no EMA, no gradient clipping. Paper: 39.8 M, 8.7 G, 83.8 top-1.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/imagenet_runtime.py',
]
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ViLLS', arch='medium', img_size=224, window_size=7, dp_rank=8,
                  drop_path_rate=0.3),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=.02)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)
train_dataloader = dict(batch_size=128, drop_last=True)  # as the official loader
# The official no-decay list: global tokens, position biases, the LayerNorms of the blocks, the
# patch embeddings and the end, and the head's bias. Other biases and LS attention's dual
# LayerNorms keep the decay.
optim_wrapper = dict(
    optimizer=dict(lr=8e-4, weight_decay=0.1),
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.0,
        custom_keys={
            '.global_tokens': dict(decay_mult=0.0),
            'rel_pos_table': dict(decay_mult=0.0),
            '.g2l': dict(decay_mult=0.0),
            '.g2g': dict(decay_mult=0.0),
            '.dual_ln': dict(decay_mult=1.0),
            'head.fc.bias': dict(decay_mult=0.0),
        }),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.002, by_epoch=True, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=5, end=300,
         convert_to_iter_based=True),
]
auto_scale_lr = dict(base_batch_size=1024)
