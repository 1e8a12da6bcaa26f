"""The parity gate: an ONNX export must predict what the PyTorch model predicts, on real images.

On the config's test images (or, when its data root does not exist, the built-in synthetic
data in the same on-disk layout) both run the same input: the test pipeline's image, resized
to a static export's input size. The gate reports the largest absolute logit difference, the
share of pixels whose argmax agrees (the pass criterion, at least ``min_agreement``) and the
mIoU of both backends against the ground truth (mmseg's IoUMetric arithmetic). For INT8 / fp16
exports the criterion is the mIoU drop instead (at most ``max_miou_drop`` points).
"""
import copy
import os.path as osp
from dataclasses import dataclass, field

import numpy as np
import torch

from .graph import SegmentorGraph, logits_to_labels, resize_logits
from .onnx import OnnxSegmentor
from .predictor import fit_to

MIN_AGREEMENT = 0.999
# Built-in data per dataset type: (toy_data generator, its default validation image size).
BUILT_IN = {'ADE20KDataset': 'ade20k', 'CityscapesDataset': 'cityscapes'}


def real_samples(cfg, num_images, workdir, split='test'):
    """``(source, dataset)``: the config's test set (``split='train'``: its training set
    through the test pipeline, e.g. for calibration), or the built-in data of the same layout
    written to ``workdir`` when that set's data root does not exist."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from ..toy_data.images import GENERATORS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    if split == 'train':
        dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
        while 'dataset' in dataset_cfg:  # RepeatDataset and other wrappers
            dataset_cfg = dataset_cfg.dataset
        dataset_cfg.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    root = dataset_cfg.get('data_root')
    source = f'{split} set ({root})'
    if not root or not osp.isdir(root):
        fmt = BUILT_IN.get(dataset_cfg.get('type'))
        if fmt is None:
            raise FileNotFoundError(
                f'{split}_dataloader.dataset.data_root = {root!r} does not exist and there is '
                f'no built-in data for {dataset_cfg.get("type")}; put the {split} set there or '
                f'pass --cfg-options {split}_dataloader.dataset.data_root=PATH')
        train = split == 'train'
        info = GENERATORS[fmt](workdir, num_train=num_images if train else 0,
                               num_val=0 if train else num_images)
        dataset_cfg.data_root = info['data_root']
        kind = 'training' if train else 'validation'
        source = f'built-in {fmt} data ({num_images} {kind} images; {root!r} not found)'
    dataset = DATASETS.build(dataset_cfg)
    return source, dataset


@dataclass
class ParityReport:
    source: str
    num_images: int = 0
    max_abs_diff: float = 0.0
    max_abs_logit: float = 0.0
    same_pixels: int = 0
    pixels: int = 0
    miou: dict = field(default_factory=dict)  # backend -> mIoU (%), when labels exist
    min_agreement: float = MIN_AGREEMENT
    precision: str = 'fp32'
    # Reduced precision: the gate bounds the mIoU loss (points) instead of the agreement.
    max_miou_drop: float = None

    @property
    def agreement(self):
        return self.same_pixels / max(self.pixels, 1)

    @property
    def miou_drop(self):
        """mIoU points lost by the export against PyTorch; None without ground truth."""
        if {'pytorch', 'onnxruntime'} <= set(self.miou):
            return self.miou['pytorch'] - self.miou['onnxruntime']
        return None

    @property
    def passed(self):
        if self.pixels == 0:
            return False
        if self.max_miou_drop is None:
            return self.agreement >= self.min_agreement
        return self.miou_drop is not None and self.miou_drop <= self.max_miou_drop

    def summary(self):
        bound = (f'gate: >= {100 * self.min_agreement:g} %' if self.max_miou_drop is None
                 else 'reported')
        lines = [
            f'parity gate ({self.precision} ONNX against PyTorch fp32) on {self.num_images} '
            f'images of the {self.source}:',
            f'  max |logits difference|  {self.max_abs_diff:.3g} '
            f'(largest |logit| {self.max_abs_logit:.3g})',
            f'  same argmax              {100 * self.agreement:.3f} % of {self.pixels} pixels '
            f'({bound})']
        lines += [f'  mIoU {name:19s} {value:.2f}' for name, value in self.miou.items()]
        if self.max_miou_drop is not None:
            drop = 'n/a (no ground truth)' if self.miou_drop is None else \
                f'{self.miou_drop:.2f} points'
            lines.append(f'  mIoU drop                {drop} '
                         f'(gate: <= {self.max_miou_drop:g})')
        lines.append('  PASSED' if self.passed else '  FAILED: the export does not predict what '
                     'the PyTorch model predicts')
        return '\n'.join(lines)


def parity_gate(segmentor, onnx_path, dataset, source, num_images=None, threads=None,
                min_agreement=MIN_AGREEMENT, precision='fp32', max_miou_drop=None):
    """Run ``segmentor`` (eager) and the ONNX export on the first ``num_images`` samples of
    ``dataset`` (mmseg test-pipeline output) and return a :class:`ParityReport`. With
    ``max_miou_drop`` (reduced-precision exports) it passes on the mIoU loss, not on the
    agreement."""
    from mmseg.evaluation.metrics import IoUMetric
    graph = SegmentorGraph(segmentor).eval()
    session = OnnxSegmentor(onnx_path, threads, with_logits=True)
    head = segmentor.decode_head
    threshold = getattr(head, 'threshold', None)
    ignore_index = getattr(head, 'ignore_index', 255)
    report = ParityReport(source, min_agreement=min_agreement, precision=precision,
                          max_miou_drop=max_miou_drop)
    areas = {'pytorch': [], 'onnxruntime': []}
    count = len(dataset) if num_images is None else min(num_images, len(dataset))
    for i in range(count):
        sample = dataset[i]
        image = fit_to(sample['inputs'].float()[None], session.static_shape)
        with torch.no_grad():
            ref = graph(image)
        outs = session.run(image.numpy(), all_outputs=True)
        logits = torch.from_numpy(outs[-1])
        labels = torch.from_numpy(outs[0]) if session.output == 'labels' else \
            logits_to_labels(logits, threshold)
        report.num_images += 1
        report.max_abs_diff = max(report.max_abs_diff, (logits - ref).abs().max().item())
        report.max_abs_logit = max(report.max_abs_logit, ref.abs().max().item())
        report.same_pixels += (labels == logits_to_labels(ref, threshold)).sum().item()
        report.pixels += labels.numel()
        data_sample = sample['data_samples']
        if 'gt_sem_seg' not in data_sample:
            continue
        gt = data_sample.gt_sem_seg.data[0]
        for name, out in (('pytorch', ref), ('onnxruntime', logits)):
            pred = logits_to_labels(resize_logits(out, gt.shape, head.align_corners),
                                    threshold)[0]
            areas[name].append(IoUMetric.intersect_and_union(
                pred, gt, head.num_classes, ignore_index))
    for name, per_image in areas.items():
        if per_image:
            totals = [sum(a[k] for a in per_image) for k in range(4)]
            iou = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])['IoU']
            report.miou[name] = float(np.nanmean(iou) * 100)
    return report
