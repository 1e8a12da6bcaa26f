"""Metrics: Cityscapes predictions in the form the official evaluation scores, top-1 accuracy of
sequence classifiers, bits per character."""
from .metrics import (
    LABEL_IDS_SUFFIX,
    CityscapesLabelIdWriter,
    label_to_train_ids,
    read_prediction,
    train_to_label_ids,
)

__all__ = ['LABEL_IDS_SUFFIX', 'CityscapesLabelIdWriter', 'label_to_train_ids',
           'read_prediction', 'train_to_label_ids']
