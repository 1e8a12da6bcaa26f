# CPU demo on the synthetic toy COCO-panoptic set: ResNet-18 trained from scratch (no pretrained
# weights offline) and a REDUCED Panoptic SegFormer: width 128, 50 thing queries, 2 encoder / 3
# location-decoder layers, 2 + 2 mask-decoder layers, lr 5e-4 for all parameters, grad clip 1.0.
# Data: python tools/misc/make_toy_data.py --format coco-panoptic --out data/toy_coco_panoptic
_base_ = ['./panoptic-segformer_r50_coco-panoptic-12e.py',
          '../_base_/datasets/coco_panoptic_toy.py']

embed_dims = 128
model = dict(
    num_queries=50,
    backbone=dict(depth=18, frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[128, 256, 512], out_channels=embed_dims),
    encoder=dict(num_layers=2, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=512, ffn_drop=0.0))),
    decoder=dict(num_layers=3, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, dropout=0.0),
        cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=512, ffn_drop=0.0))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(
        num_things_classes=5,
        num_stuff_classes=4,
        embed_dims=embed_dims,
        thing_mask_decoder=dict(num_layers=2, embed_dims=embed_dims, num_heads=4),
        stuff_mask_decoder=dict(num_layers=2, embed_dims=embed_dims, num_heads=4)),
    test_cfg=dict(max_per_img=20))

optim_wrapper = dict(
    optimizer=dict(lr=5e-4),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
max_epochs = 40
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[32], gamma=0.1)
]
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=10, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_processor = dict(window_size=10)
