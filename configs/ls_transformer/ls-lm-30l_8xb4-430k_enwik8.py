# Transformer-LS, 30 layers (~110M parameters), enwik8, phase 1 of 3 (official
# autoregressive/launch/enwik8-large-phase1.sh): as the 12-layer model with dropout 0.4 and
# weight decay 0.1. Paper: 0.97 test BPC after the three phases (README.md here).
_base_ = './ls-lm-12l_8xb4-430k_enwik8.py'

model = dict(depth=30, drop=0.4, emb_drop=0.4)
optim_wrapper = dict(optimizer=dict(weight_decay=0.1))
