"""Shrinking Panoptic SegFormer configs for tests (same code paths, tiny sizes)."""


def shrink_panoptic_model(cfg, dims=32, queries=20):
    """Half-width ResNet-18 from scratch, width ``dims``, ``queries`` thing queries, one encoder
    layer, two location-decoder layers, 1 thing + 2 stuff mask blocks; edits ``cfg`` in place."""
    model = cfg.model
    model.num_queries = queries
    model.backbone = dict(type='ResNet', depth=18, base_channels=32, num_stages=4,
                          out_indices=(1, 2, 3), frozen_stages=-1, norm_eval=False,
                          norm_cfg=dict(type='BN', requires_grad=True), style='pytorch')
    model.neck.update(in_channels=[64, 128, 256], out_channels=dims,
                      norm_cfg=dict(type='GN', num_groups=8))
    model.encoder.num_layers = 1
    model.encoder.layer_cfg.self_attn_cfg.update(embed_dims=dims, num_heads=4)
    model.encoder.layer_cfg.ffn_cfg.update(embed_dims=dims, feedforward_channels=64)
    model.decoder.num_layers = 2
    for key in ('self_attn_cfg', 'cross_attn_cfg'):
        model.decoder.layer_cfg[key].update(embed_dims=dims, num_heads=4)
    model.decoder.layer_cfg.ffn_cfg.update(embed_dims=dims, feedforward_channels=64)
    model.positional_encoding.num_feats = dims // 2
    head = model.bbox_head
    head.embed_dims = dims
    head.thing_mask_decoder.update(num_layers=1, embed_dims=dims, num_heads=4)
    head.stuff_mask_decoder.update(num_layers=2, embed_dims=dims, num_heads=4)
    model.test_cfg.max_per_img = 10
    return cfg
