# The 224 ImageNet training pipeline of mmpretrain's imagenet_bs64_swin_224.py (DeiT / timm:
# RandomResizedCrop, flip, RandAugment m9-mstd0.5 increasing, random erasing 0.25) at 384, for
# models trained from scratch at 384. Use as ``pipeline={{_base_.train_pipeline_384}}``.
train_pipeline_384 = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=[103.53, 116.28, 123.675],
         fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]
