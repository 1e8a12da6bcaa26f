"""The segmentor as one tensor program, as ONNX Runtime and ``torch.compile`` run it."""
import torch
import torch.nn.functional as F
from torch import nn

OUTPUTS = ('logits', 'labels')


class SegmentorGraph(nn.Module):
    """Raw pixels in, logits or a label map out, at the input's resolution.

    Input ``image [N, 3, H, W]``: float32 pixel values 0-255 in the channel order images are read
    (BGR for mmcv), after the test pipeline's resize. Inside: the data preprocessor's channel
    swap and mean / std normalisation, backbone, neck, decode head, and mmseg's bilinear resize
    of the logits to ``H x W`` (``align_corners`` of the head). ``output='labels'`` ends with the
    per-pixel class (argmax; ``sigmoid > threshold`` for a single-logit binary head).

    The resize to the original image size (mmseg's post-processing) stays outside: it depends
    on each image's size, not on the network (:func:`logits_to_labels`).
    """

    def __init__(self, segmentor, output='logits'):
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f'output must be one of {OUTPUTS}, got {output!r}')
        pre = segmentor.data_preprocessor
        test_cfg = getattr(pre, 'test_cfg', None) or {}
        if test_cfg.get('size') or test_cfg.get('size_divisor'):
            raise NotImplementedError(
                'data_preprocessor.test_cfg pads test images; the exported graph does not pad. '
                'Pad in the test pipeline instead (e.g. AlignedResize with size_divisor).')
        self.segmentor = segmentor
        self.output = output
        self.swap_channels = bool(getattr(pre, 'channel_conversion', False))
        self.normalize = bool(getattr(pre, '_enable_normalize', False))
        if self.normalize:
            self.register_buffer('mean', pre.mean.view(1, -1, 1, 1).float(), persistent=False)
            self.register_buffer('std', pre.std.view(1, -1, 1, 1).float(), persistent=False)

    def forward(self, image):
        x = image.flip(1) if self.swap_channels else image
        if self.normalize:
            x = (x - self.mean) / self.std
        head = self.segmentor.decode_head
        logits = head(self.segmentor.extract_feat(x))
        logits = F.interpolate(logits, image.shape[2:], mode='bilinear',
                               align_corners=head.align_corners)
        if self.output == 'labels':
            return logits_to_labels(logits, getattr(head, 'threshold', None))
        return logits


def logits_to_labels(logits, threshold=None):
    """mmseg's per-pixel prediction from ``logits [N, K, H, W]``: argmax over K, or for a
    single-logit (binary, sigmoid) head ``sigmoid > threshold``."""
    if logits.shape[1] == 1:
        return (logits.sigmoid() > threshold).squeeze(1).long()
    return logits.argmax(1)


def resize_logits(logits, size, align_corners):
    """Resize logits to an image's original ``size`` (mmseg's post-processing)."""
    return F.interpolate(torch.as_tensor(logits), tuple(size), mode='bilinear',
                         align_corners=align_corners)
