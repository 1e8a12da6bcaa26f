# CvT*-LS-21 at 384 with the official CvT-21 384 recipe (cvt-21-384x384.yaml): trained at 384,
# window 8, test resize straight to 384x384 (no centre crop), no repeated augmentation (the 384
# yaml has none). Paper: 83.2 top-1, 23.9 G.
_base_ = ['./cvt-ls-21_in1k.py', '../_base_/datasets/imagenet_randaug_384.py']
model = dict(backbone=dict(img_size=384, window_size=8))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=384, backend='pillow', interpolation='bicubic'),
    dict(type='PackInputs'),
]
train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
                        dataset=dict(pipeline={{_base_.train_pipeline_384}}))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
