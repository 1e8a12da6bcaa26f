# ViL-LS-Medium at 384 (official train_medium_384.sh): trained from scratch at 384, window 8,
# 32 GPUs x 32 images, lr 8e-4, weight decay 0.1, drop path 0.2; test: bicubic resize to
# 438 = 384 / 0.875 and centre crop 384. Paper: 84.4 top-1, 28.7 G.
_base_ = ['./vil-ls-medium_in1k.py', '../_base_/datasets/imagenet_randaug_384.py']
model = dict(backbone=dict(img_size=384, window_size=8, drop_path_rate=0.2))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=438, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=384),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline={{_base_.train_pipeline_384}}))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
