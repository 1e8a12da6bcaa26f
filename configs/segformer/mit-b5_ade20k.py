# SegFormer-B5 on ADE20K, 512x512, 160k iterations, 8 GPUs x 2 images: the official B0-B4
# ADE20K recipe applied to B5 (ours; the official B5 ADE20K model is 640x640, mit-b5_ade20k-640.py).
_base_ = './mit-b0_ade20k.py'
pretrained = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/'
              'mit_b5_20220624-658746d9.pth')
model = dict(
    backbone=dict(arch='b5', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 320, 512], channels=768))
