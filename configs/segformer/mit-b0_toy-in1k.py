# MiT-B0 classifier (mit-b0_in1k.py) on the built-in toy ImageNet data at 32x32: a CPU demo of
# ImageNet pre-training whose checkpoint initialises the toy segmentation config:
#   python tools/train.py configs/segformer/mit-b0_toy-ade20k.py --cfg-options \
#       model.backbone.init_cfg.type=Pretrained \
#       model.backbone.init_cfg.checkpoint=work_dirs/mit-b0_toy-in1k/epoch_12.pth
_base_ = '../_base_/toy_imagenet.py'
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MiT', arch='b0', out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=256,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
