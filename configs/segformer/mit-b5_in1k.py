# MiT-B5 ImageNet-1K classifier, recipe of configs/segformer/mit-b0_in1k.py with PVTv2-B5's
# drop path 0.3 and gradient clipping at norm 1.0.
_base_ = './mit-b0_in1k.py'
model = dict(backbone=dict(arch='b5', drop_path_rate=0.3), head=dict(in_channels=512))
optim_wrapper = dict(clip_grad=dict(max_norm=1.0))
