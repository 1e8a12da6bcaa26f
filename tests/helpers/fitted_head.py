"""A segmentor whose predictions mean something without training: random backbone and head,
then the classifier (``conv_seg``) fitted by ridge regression of one-hot labels on the head's
features over a few toy images. Its mIoU is well above chance, so a broken reduced-precision
export visibly loses mIoU."""
import torch
import torch.nn.functional as F

from mmseg_ext.deploy import SegmentorGraph


def head_features(model, image):
    """The decode head's input to its classifier ``[C, h, w]`` for raw pixels
    ``image [1, 3, H, W]``."""
    captured = {}
    head = model.decode_head
    original = head.cls_seg

    def capture(feat):
        captured['feat'] = feat
        return original(feat)

    head.cls_seg = capture
    try:
        with torch.no_grad():
            SegmentorGraph(model).eval()(image)
    finally:
        del head.cls_seg
    return captured['feat'][0]


def fit_classifier(model, dataset, ridge=1e-2):
    """Fit ``model.decode_head.conv_seg`` on every sample of ``dataset`` (mmseg test-pipeline
    output with ``gt_sem_seg``), in place."""
    head = model.decode_head
    rows, targets = [], []
    for sample in dataset:
        feat = head_features(model, sample['inputs'][None].float())
        gt = sample['data_samples'].gt_sem_seg.data.float()[None]
        gt = F.interpolate(gt, feat.shape[1:], mode='nearest')[0, 0].long().flatten()
        keep = gt != head.ignore_index
        rows.append(feat.flatten(1).T[keep])
        targets.append(F.one_hot(gt[keep], head.num_classes).float())
    x = torch.cat(rows)
    x = torch.cat([x, torch.ones(len(x), 1)], 1)
    y = torch.cat(targets)
    w = torch.linalg.solve(x.T @ x + ridge * len(x) * torch.eye(x.shape[1]), x.T @ y)
    with torch.no_grad():
        head.conv_seg.weight.copy_(w[:-1].T[:, :, None, None])
        head.conv_seg.bias.copy_(w[-1])
    return model
