# CPU demo on the toy COCO-panoptic set with this project's MiT-B0 backbone (type `MiT`, root
# registry; stages 2-4 = strides 8/16/32, channels 64/160/256), trained from scratch. Same
# REDUCED head as the R-18 toy config.
_base_ = ['./panoptic-segformer_r18_toy-coco-panoptic.py']

model = dict(
    backbone=dict(_delete_=True, type='MiT', arch='b0', out_indices=(1, 2, 3)),
    neck=dict(in_channels=[64, 160, 256]))
