"""Checks that a config and its data fit together, before anything runs (docs/datasets.md).

``config_keys``: keys, hook / evaluator / ``env_cfg`` arguments and data roots;
``seg_data``: a segmentation config's files, classes and labels; ``classification_data``:
ImageNet-layout folders; ``dataset_scan``: every image and mask read (tools/misc/check_dataset.py);
``config_walk``: the splits and datasets of a config, which they all walk.
"""
