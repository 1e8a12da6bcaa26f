# ViL-LS-Small at 224: ViL-Small's depths (1, 2, 8, 1) (microsoft/vision-longformer) with the LS
# attention settings of the official ViL-LS configs. The LS paper has no Small result and no
# official script; we keep the Medium recipe with ViL-Small's drop path 0.1.
_base_ = './vil-ls-medium_in1k.py'
model = dict(backbone=dict(arch='small', drop_path_rate=0.1))
