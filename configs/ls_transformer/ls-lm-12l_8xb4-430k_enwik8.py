# Transformer-LS, 12 layers (~44M parameters), enwik8, phase 1 of 3 (official
# autoregressive/launch/enwik8-base-phase1.sh): d_model 512, 8 heads, FFN 2048, window 512,
# segment 16, rank 1, 2048 tokens per block with a 2048-token memory, dropout 0.2, Adam 2.5e-4
# (weight decay 0.01) after 10k warm-up steps, fp16, 430k steps of 8 GPUs x 4 streams.
# Paper: 0.99 test BPC after the three phases (README.md here).
_base_ = ['../_base_/char_lm_runtime.py', '../_base_/datasets/enwik8.py']

model = dict(
    type='LSCharLM', embed_dims=512, depth=12, num_heads=8, ffn_dims=2048, window_size=512,
    segment_size=16, dp_rank=1, mem_len=2048, rel_pos=True, drop=0.2, emb_drop=0.2)

optim_wrapper = dict(
    type='AmpOptimWrapper', dtype='float16',
    optimizer=dict(type='AdamW', lr=2.5e-4, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [  # fairseq 'fixed' with warm-up: linear from 0, then constant
    dict(type='LinearLR', start_factor=1e-4, by_epoch=False, begin=0, end=10000),
    dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=10000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=430000, val_interval=1000)
