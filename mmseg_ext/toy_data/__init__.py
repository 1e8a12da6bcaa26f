"""Built-in synthetic data, one module per kind (docs/toy_data.md): ``images`` (segmentation,
panoptic and classification images in the ADE20K, Cityscapes, COCO-panoptic, ImageNet and custom
layouts), ``lra`` (Long Range Arena text tasks, with the ListOps language in ``listops``) and
``text`` (a character-LM corpus). None of them imports the OpenMMLab stack or torch."""
