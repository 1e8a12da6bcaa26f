"""Segmentation transforms: ``AlignedResize``, ``ValidateSegLabels`` and ``ImageCorruption``
(which loads imagecorruptions, so only the robustness evaluation imports it)."""
