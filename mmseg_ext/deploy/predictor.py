"""One image in, one label map out, on any backend: eager PyTorch (mmseg's own inference),
the same graph under ``torch.compile``, or an ONNX export under ONNX Runtime.

Every backend uses the config's test pipeline (resize) and mmseg's post-processing (bilinear
resize of the logits to the original image, then argmax; a few classes at a time, so big images
fit in memory), so their label maps agree.
"""
from functools import partial

import torch
import torch.nn.functional as F

from ..apis.inference import resize_to_labels, segment
from .graph import SegmentorGraph

BACKENDS = ('pytorch', 'onnxruntime')


def test_steps(cfg):
    """The config's test pipeline (``test_pipeline``, else the test set's)."""
    return cfg.get('test_pipeline', cfg.test_dataloader.dataset.pipeline)


def test_pipeline(cfg):
    """The config's test pipeline without annotations, reading images given as arrays (what
    ``mmseg.apis.inference_model`` runs)."""
    from mmcv.transforms import Compose
    steps = [dict(t) for t in test_steps(cfg) if t['type'] != 'LoadAnnotations']
    steps[0] = dict(type='LoadImageFromNDArray')
    return Compose(steps)


def fit_to(image, shape):
    """Resize ``image [N, 3, H, W]`` to a static export's ``shape`` (bilinear); as is if None
    or already that size."""
    if shape is None or tuple(image.shape[2:]) == tuple(shape):
        return image
    return F.interpolate(image, tuple(shape), mode='bilinear', align_corners=False)


def slide(run, image, crop_size, stride):
    """mmseg's sliding-window inference (``test_cfg.mode='slide'``) around ``run``: logits of
    overlapping ``crop_size`` windows, ``stride`` apart and shifted inside at the borders,
    averaged where they overlap. Windows are cut from the raw image: the graph normalises
    per pixel, so this equals cutting the normalised one."""
    (h, w), (ch, cw), (sh, sw) = image.shape[2:], crop_size, stride
    logits = count = None
    for y in range(max(h - ch + sh - 1, 0) // sh + 1):
        for x in range(max(w - cw + sw - 1, 0) // sw + 1):
            y2, x2 = min(y * sh + ch, h), min(x * sw + cw, w)
            y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
            out = torch.as_tensor(run(image[:, :, y1:y2, x1:x2]))
            if logits is None:
                logits = out.new_zeros(1, out.shape[1], h, w)
                count = out.new_zeros(1, 1, h, w)
            logits[:, :, y1:y2, x1:x2] += out
            count[:, :, y1:y2, x1:x2] += 1
    return logits / count


class Predictor:
    """``predictor(img_bgr) -> uint8 label map`` at the image's size. ``run`` maps the graph
    input (``[1, 3, H, W]`` float32, 0-255) to logits at that size; whole-image or sliding-
    window inference as the config's ``model.test_cfg`` says."""

    def __init__(self, cfg, run, align_corners, threshold=None, static_shape=None):
        from mmengine.registry import init_default_scope
        init_default_scope(cfg.get('default_scope', 'mmseg'))
        self.pipeline = test_pipeline(cfg)
        self.static_shape = static_shape
        self.run = lambda image: torch.as_tensor(run(fit_to(image, static_shape)))
        self.test_cfg = cfg.model.get('test_cfg') or {}
        self.align_corners, self.threshold = align_corners, threshold

    def __call__(self, img):
        data = self.pipeline(dict(img=img))
        image = data['inputs'].float()[None]
        with torch.no_grad():
            if self.test_cfg.get('mode') == 'slide':
                logits = slide(self.run, image, self.test_cfg['crop_size'],
                               self.test_cfg['stride'])
            else:
                logits = self.run(image)
        return resize_to_labels(logits, data['data_samples'].ori_shape, self.align_corners,
                                self.threshold)


def build_predictor(config, checkpoint, backend='pytorch', device='cpu', compile=False,
                    threads=None):
    """``(predict, palette)`` for tools/infer.py. ``backend='onnxruntime'``: ``checkpoint`` is
    an ONNX file of tools/deployment/pytorch2onnx.py (CPU). ``compile``: the PyTorch graph
    (:class:`SegmentorGraph`) under ``torch.compile``; plain ``pytorch`` is mmseg's
    inference (:func:`~mmseg_ext.apis.inference.segment`: ``inference_model`` in bounded
    memory), the reference the others are checked against."""
    from mmengine.config import Config

    from ..apis import init_segmentor, load_config
    from ..apis.inference import test_set_metainfo
    from .onnx import OnnxSegmentor
    cfg = config if isinstance(config, Config) else load_config(config)
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    head_cfg = cfg.model.decode_head
    if backend == 'onnxruntime':
        if compile:
            raise ValueError('--compile applies to the pytorch backend only')
        session = OnnxSegmentor(checkpoint, threads, with_logits=True)
        predict = Predictor(cfg, lambda x: session.run(x.numpy(), all_outputs=True)[-1],
                            head_cfg.get('align_corners', False), head_cfg.get('threshold'),
                            session.static_shape)
        palette = test_set_metainfo(cfg)['palette']
        return predict, palette
    model = init_segmentor(cfg, checkpoint, device)
    palette = model.dataset_meta['palette']
    if compile:
        graph = torch.compile(SegmentorGraph(model).eval())
        head = model.decode_head
        return Predictor(cfg, lambda x: graph(x.to(device)).cpu(), head.align_corners,
                         getattr(head, 'threshold', None)), palette
    return partial(segment, model), palette
