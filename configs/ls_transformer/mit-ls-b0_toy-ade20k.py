# MiT-LS-B0 on the built-in toy ADE20K data: the toy SegFormer-B0 CPU demo
# (configs/segformer/mit-b0_toy-ade20k.py) with LSAttention2d in stages 1-2, for a side-by-side
# comparison with plain MiT-B0 under the same data, schedule and seed.
_base_ = '../segformer/mit-b0_toy-ade20k.py'
ls_attn = dict(type='LSAttention2d', window_size=8, dp_rank=8, rel_pos_bias=True)
model = dict(backbone=dict(stage_attn_cfgs=[ls_attn, ls_attn, None, None]))
