# SegFormer-B2 with Long-Short attention in MiT stages 1-2 (see mit-ls-b0_ade20k.py).
_base_ = '../segformer/mit-b2_ade20k.py'
ls_attn = dict(type='LSAttention2d', window_size=8, dp_rank=8, rel_pos_bias=True)
model = dict(backbone=dict(stage_attn_cfgs=[ls_attn, ls_attn, None, None]))
