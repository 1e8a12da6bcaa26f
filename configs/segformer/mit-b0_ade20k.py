# SegFormer-B0 on ADE20K, 512x512, 160k iterations, 8 GPUs x 2 images (official recipe).
_base_ = [
    '../_base_/models/segformer_mit-b0.py', '../_base_/datasets/ade20k_segformer.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_160k_segformer.py'
]
crop_size = (512, 512)
# ImageNet-1k MiT weights; mmseg's, official and HF layouts all load (converted on the fly).
pretrained = ('https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/'
              'mit_b0_20220624-7e0fe6dd.pth')
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
