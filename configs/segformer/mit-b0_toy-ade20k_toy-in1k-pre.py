# The toy SegFormer-B0 (mit-b0_toy-ade20k.py) starting from the toy ImageNet classifier
# (mit-b0_toy-in1k.py): the classifier's checkpoint goes into the backbone's init_cfg as it is
# (MiT loads the ``backbone.*`` weights of a whole-model checkpoint).
_base_ = './mit-b0_toy-ade20k.py'
pretrained = 'work_dirs/mit-b0_toy-in1k/epoch_12.pth'
model = dict(
    backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=pretrained)))
