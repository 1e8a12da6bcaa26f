"""Robustness to common corruptions (SegFormer Sec. 4.4; ImageNet-C) and side-by-side prediction
figures: the logic of tools/analysis_tools/robustness_eval.py and compare_predictions.py."""
