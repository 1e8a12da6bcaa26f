"""Long Range Arena text tasks with Long-Short attention (docs/ls_attention.md)."""
from . import listops, toy_data
from .accuracy import ClassificationAccuracy
from .datasets import (
                       AANRetrievalDataset,
                       IMDbDataset,
                       ListOpsDataset,
                       TokenSequenceDataset,
                       lra_collate,
)
from .lra_classifier import LRAClassifier, LSEncoderBlock, attention_per_head

__all__ = [
    'AANRetrievalDataset', 'ClassificationAccuracy', 'IMDbDataset', 'LRAClassifier',
    'LSEncoderBlock', 'ListOpsDataset', 'TokenSequenceDataset', 'attention_per_head', 'listops',
    'lra_collate', 'toy_data'
]
