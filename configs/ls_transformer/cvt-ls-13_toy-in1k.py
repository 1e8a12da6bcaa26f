# CvT*-LS-13 (cvt-ls-13_in1k.py) on the built-in toy ImageNet data at 32x32, a CPU demo: LS
# window 4 on the 8x8 and 4x4 token maps, 10-way head (see configs/_base_/toy_imagenet.py).
_base_ = '../_base_/toy_imagenet.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='CvTLS', arch='13', img_size=32, window_size=4, dp_rank=8),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=384,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
