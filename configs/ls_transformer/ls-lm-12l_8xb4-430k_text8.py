# Transformer-LS, 12 layers (~44M parameters), text8, phase 1 of 3 (official
# autoregressive/launch/text8-base-phase1.sh): the enwik8 recipe on text8 (characters, standard
# split 90M / 5M / 5M) with Adam 5e-4. Paper: 1.09 test BPC after the three phases.
_base_ = './ls-lm-12l_8xb4-430k_enwik8.py'

data_root = 'data/text8'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
