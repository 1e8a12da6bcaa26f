"""Confusion matrix of saved segmentation predictions against a data set's ground truth."""
import os.path as osp

import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar


def segmentation_confusion(cfg: Config, prediction_dir: str,
                           split: str = 'test') -> tuple[np.ndarray, tuple[str, ...]]:
    """``matrix[i, j]``: pixels of ground-truth class ``i`` predicted as ``j``, over the
    ``split`` data set of ``cfg``, and the class names.

    ``prediction_dir`` holds ``<image name>.png`` label maps as ``tools/test.py --out DIR``
    writes them (with ``reduce_zero_label`` the written labels are one above the trained ones,
    as in the data set's own files), or for Cityscapes ``<image name>_labelIds.png`` in label
    ids (read back as train ids). The ground truth is read by mmseg's ``LoadAnnotations``,
    as training and testing read it (``label_map``, ``reduce_zero_label``); its ignored pixels
    are not counted.
    """
    from mmseg.datasets.transforms import LoadAnnotations
    from mmseg.registry import DATASETS

    from mmseg_ext.checks.config_walk import SPLITS
    from mmseg_ext.evaluation import read_prediction
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset_cfg = cfg[SPLITS[split]].dataset
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    classes = tuple(dataset.metainfo['classes'])
    num = len(classes)
    ignore = dataset.ignore_index
    load = LoadAnnotations()
    matrix = np.zeros((num, num), np.int64)
    progress = ProgressBar(len(dataset))
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        gt = load(dict(info, seg_fields=[]))['gt_seg_map'].astype(np.int64)
        name = osp.splitext(osp.basename(info['img_path']))[0]
        path, pred = read_prediction(prediction_dir, name)
        if pred is None:
            raise FileNotFoundError(f'no prediction {osp.join(prediction_dir, name)}.png for '
                                    f'{info["img_path"]}; write them with tools/test.py CONFIG '
                                    'CKPT --out DIR')
        pred = pred.astype(np.int64)
        if info.get('reduce_zero_label'):
            pred = pred - 1
        if pred.shape != gt.shape:
            raise ValueError(f'{path} is {pred.shape[1]}x{pred.shape[0]} but its ground truth '
                             f'{info["seg_map_path"]} is {gt.shape[1]}x{gt.shape[0]}')
        valid = (gt != ignore) & (gt < num)
        if ((pred[valid] < 0) | (pred[valid] >= num)).any():
            raise ValueError(f'{path} holds labels outside the {num} classes of the config')
        matrix += np.bincount(gt[valid] * num + pred[valid],
                              minlength=num * num).reshape(num, num)
        progress.update()
    return matrix, classes


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU (%) of a confusion matrix, by mmseg's own ``IoUMetric`` formula from the
    intersections (diagonal), predicted (column) and true (row) areas; NaN for a class
    neither present nor predicted."""
    import torch
    from mmseg.evaluation.metrics import IoUMetric
    tp, pred, true = (torch.from_numpy(a.astype(np.float64))
                      for a in (np.diag(matrix), matrix.sum(0), matrix.sum(1)))
    metrics = IoUMetric.total_area_to_metrics(tp, pred + true - tp, pred, true, ['mIoU'])
    return 100 * np.asarray(metrics['IoU'])
