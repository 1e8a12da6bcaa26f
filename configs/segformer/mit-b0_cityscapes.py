# SegFormer-B0 on Cityscapes: 1024x1024 crops, 160k iterations, 8 GPUs x 1 image,
# sliding-window test 1024x1024 with stride 768, validation every 4000 iterations (official recipe).
_base_ = [
    '../_base_/models/segformer_mit-b0.py', '../_base_/datasets/cityscapes_segformer.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_segformer.py'
]
crop_size = (1024, 1024)
pretrained = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/'
              'mit_b0_20220624-7e0fe6dd.pth')
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(num_classes=19),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(768, 768)))
train_cfg = dict(val_interval=4000)
