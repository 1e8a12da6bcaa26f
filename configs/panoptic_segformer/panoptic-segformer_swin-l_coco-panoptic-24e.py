# Panoptic SegFormer, Swin-L (window 7, ImageNet-22k at 224, as the official release), 24 epochs.
# Paper: PQ 55.8.
_base_ = ['./panoptic-segformer_r50_coco-panoptic-24e.py']

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/' \
    'swin_large_patch4_window7_224_22k.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=224,
        embed_dims=192,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.3,
        patch_norm=True,
        out_indices=(1, 2, 3),
        with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[384, 768, 1536]),
    test_cfg=dict(merging=dict(score_thr=0.3)))
