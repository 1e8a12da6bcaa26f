# Panoptic SegFormer, ResNet-101, 24 epochs. Paper: PQ 50.6 on COCO val.
_base_ = ['./panoptic-segformer_r50_coco-panoptic-24e.py']

model = dict(backbone=dict(
    depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
