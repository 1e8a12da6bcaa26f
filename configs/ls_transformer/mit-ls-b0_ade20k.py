# SegFormer-B0 with Long-Short attention (LSAttention2d) in MiT stages 1-2, as ViL-LS does
# (Zhu et al. 2021, Sec. 4.3): 8 x 8 tiles with a 4-token halo, dynamic projection rank 8,
# relative position bias. Stages 3-4 keep SegFormer's efficient self-attention. The ImageNet MiT
# checkpoint of the base config fills every weight except the LS attention layers of stages 1-2.
_base_ = '../segformer/mit-b0_ade20k.py'
ls_attn = dict(type='LSAttention2d', window_size=8, dp_rank=8, rel_pos_bias=True)
model = dict(backbone=dict(stage_attn_cfgs=[ls_attn, ls_attn, None, None]))
