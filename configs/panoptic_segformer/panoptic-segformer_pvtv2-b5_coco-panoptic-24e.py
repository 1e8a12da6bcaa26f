# Panoptic SegFormer, PVTv2-B5 (mmdet's PyramidVisionTransformerV2), 24 epochs.
# Paper (Li et al., CVPR 2022): PQ 55.4 on COCO val; quality threshold 0.3 for PVTv2 / Swin.
# Backbone initialised from the ImageNet-22K weights `pvt_v2_b5_22k.pth`, as the official config
# (mmdet's PVTv2 converts the official key layout when it loads them).
_base_ = ['./panoptic-segformer_r50_coco-panoptic-24e.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='PyramidVisionTransformerV2',
        embed_dims=64,
        num_layers=[3, 6, 40, 3],
        mlp_ratios=(4, 4, 4, 4),
        out_indices=(1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint='https://github.com/whai362/PVT/'
                      'releases/download/v2/pvt_v2_b5_22k.pth')),
    neck=dict(in_channels=[128, 320, 512]),
    test_cfg=dict(merging=dict(score_thr=0.3)))
