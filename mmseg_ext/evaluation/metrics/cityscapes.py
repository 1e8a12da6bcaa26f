"""Cityscapes predictions as the official evaluation (cityscapesscripts) reads them.

For ground truth ``CITY_SEQ_FRAME_gtFine_labelIds.png`` the official pixel-level evaluation
takes the one prediction file matching ``CITY_SEQ_FRAME*.png`` and reads it as Cityscapes *label
ids* (0-33). Models predict *train ids* (0-18). A train-id map saved as
``CITY_SEQ_FRAME_leftImg8bit.png`` (what mmseg's IoUMetric writes for ``--out``) is scored
without complaint, and wrongly (0.0069 instead of 0.5154 measured).
:class:`CityscapesLabelIdWriter` writes label ids, named ``<image name>_labelIds.png``;
:func:`read_prediction` reads such maps back as train ids.
"""
import os
import os.path as osp

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS
from PIL import Image

LABEL_IDS_SUFFIX = '_labelIds.png'


def train_to_label_ids(train_ids):
    """Train ids (255: ignored) as Cityscapes label ids, by cityscapesscripts' ``trainId2label``
    (as mmseg's CityscapesMetric converts); ids without a label become 0 (unlabeled)."""
    from cityscapesscripts.helpers.labels import trainId2label
    table = np.zeros(256, np.uint8)
    for train_id, label in trainId2label.items():
        if 0 <= train_id < 256:
            table[train_id] = label.id
    return table[np.asarray(train_ids, dtype=np.uint8)]


def label_to_train_ids(label_ids):
    """Cityscapes label ids as train ids; labels without one (void) become 255."""
    from cityscapesscripts.helpers.labels import labels
    table = np.full(256, 255, np.uint8)
    for label in labels:
        if 0 <= label.id < 256 and 0 <= label.trainId < 255:
            table[label.id] = label.trainId
    return table[np.asarray(label_ids, dtype=np.uint8)]


def read_prediction(prediction_dir, image_name):
    """The train-id label map that ``tools/test.py --out`` wrote for ``image_name`` (no
    suffix): ``<name>.png`` as is, or a Cityscapes ``<name>_labelIds.png`` mapped back to
    train ids; None if neither exists."""
    path = osp.join(prediction_dir, image_name + '.png')
    if osp.isfile(path):
        return path, np.asarray(Image.open(path))
    path = osp.join(prediction_dir, image_name + LABEL_IDS_SUFFIX)
    if osp.isfile(path):
        return path, label_to_train_ids(np.asarray(Image.open(path)))
    return None, None


@METRICS.register_module()
class CityscapesLabelIdWriter(BaseMetric):
    """Write each prediction to ``output_dir/<image name>_labelIds.png`` in Cityscapes label
    ids, which the official evaluation scores as they are (``tools/misc/cityscapes_eval.py``).
    Computes no metric itself."""

    default_prefix = 'cityscapes_label_ids'

    def __init__(self, output_dir, **kwargs):
        super().__init__(**kwargs)
        self.output_dir = output_dir

    def process(self, data_batch, data_samples):
        os.makedirs(self.output_dir, exist_ok=True)
        for sample in data_samples:
            train_ids = sample['pred_sem_seg']['data'][0].cpu().numpy()
            name = osp.splitext(osp.basename(sample['img_path']))[0]
            path = osp.join(self.output_dir, name + LABEL_IDS_SUFFIX)
            Image.fromarray(train_to_label_ids(train_ids)).save(path)
            self.results.append(path)

    def compute_metrics(self, results):
        print_log(f'wrote {len(results)} Cityscapes label-id maps (*{LABEL_IDS_SUFFIX}) to '
                  f'{self.output_dir}; score them with tools/misc/cityscapes_eval.py',
                  logger='current')
        return {}
