"""Long Range Arena text tasks with Long-Short attention (docs/ls_attention.md)."""
from .lra_classifier import LRAClassifier, LSEncoderBlock, attention_per_head

__all__ = ['LRAClassifier', 'LSEncoderBlock', 'attention_per_head']
