from .bits_per_char import BitsPerChar
from .cityscapes import (
    LABEL_IDS_SUFFIX,
    CityscapesLabelIdWriter,
    label_to_train_ids,
    read_prediction,
    train_to_label_ids,
)
from .classification_accuracy import ClassificationAccuracy

__all__ = ['LABEL_IDS_SUFFIX', 'BitsPerChar', 'CityscapesLabelIdWriter', 'ClassificationAccuracy',
           'label_to_train_ids', 'read_prediction', 'train_to_label_ids']
