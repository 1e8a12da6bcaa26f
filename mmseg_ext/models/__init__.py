"""Models: backbones, decode heads, shared layers, Panoptic SegFormer, the LS language models.
Nothing is imported here; :mod:`mmseg_ext.registry` imports what a config needs."""
