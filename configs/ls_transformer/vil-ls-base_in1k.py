# ViL-LS-Base at 224 (official train_base_224.sh): 16 GPUs x 64 images, lr 8e-4, weight decay 0.1,
# drop path 0.5, otherwise as ViL-LS-Medium. Paper: 55.8 M, 13.4 G, 84.1 top-1.
_base_ = './vil-ls-medium_in1k.py'
model = dict(backbone=dict(arch='base', drop_path_rate=0.5))
train_dataloader = dict(batch_size=64)
