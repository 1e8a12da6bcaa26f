# SegFormer-B5 on Cityscapes: 1024x1024 crops, 160k iterations, 8 GPUs x 1 image,
# sliding-window test 1024x1024 with stride 768 (official recipe).
_base_ = './mit-b0_cityscapes.py'
pretrained = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/'
              'mit_b5_20220624-658746d9.pth')
model = dict(
    backbone=dict(arch='b5', init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(in_channels=[64, 128, 320, 512], channels=768))
