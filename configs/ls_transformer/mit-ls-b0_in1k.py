# MiT-LS-B0 as an ImageNet-1K classifier: MiT-B0 with LSAttention2d in stages 1-2, as in
# mit-ls-b0_ade20k.py, trained with the MiT recipe (configs/segformer/mit-b0_in1k.py). Its
# checkpoint initialises mit-ls-b0_ade20k.py completely (LS layers included).
_base_ = '../segformer/mit-b0_in1k.py'
ls_attn = dict(type='LSAttention2d', window_size=8, dp_rank=8, rel_pos_bias=True)
model = dict(backbone=dict(stage_attn_cfgs=[ls_attn, ls_attn, None, None]))
