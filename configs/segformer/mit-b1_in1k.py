# MiT-B1 ImageNet-1K classifier with the recipe of configs/segformer/mit-b0_in1k.py
# (PVTv2-B1: drop path 0.1).
_base_ = './mit-b0_in1k.py'
model = dict(backbone=dict(arch='b1'), head=dict(in_channels=512))
