"""Datasets (character LM, LRA), segmentation transforms, image reading and the panoptic
conversions. Nothing is imported here; :mod:`mmseg_ext.registry` imports what a config needs."""
