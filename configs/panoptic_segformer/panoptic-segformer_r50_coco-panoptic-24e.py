# Panoptic SegFormer, ResNet-50, 24 epochs (step at 18). Paper: PQ 49.6 on COCO val.
_base_ = ['./panoptic-segformer_r50_coco-panoptic-12e.py']

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[18], gamma=0.1)
]
