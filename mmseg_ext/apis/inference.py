"""Inference: a segmentor from a config and a checkpoint that must match it, label maps of
images of any size in bounded memory, and a folder of images where a bad file is skipped (the
logic of tools/infer.py)."""
import os
import os.path as osp

import numpy as np

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def init_segmentor(config, checkpoint=None, device='cpu'):
    """mmseg's ``init_model`` with the exact-match check of ``tools/test.py``: a checkpoint of
    another architecture or class count is refused, naming the keys, instead of loading half
    of it with a warning. ``config`` is a path or a Config; returns the model in eval mode with
    ``dataset_meta`` (classes, palette) from the checkpoint, else from the config's test set.
    ``checkpoint=None`` keeps the random initialisation; an empty path is refused."""
    if checkpoint is not None and not checkpoint:
        raise ValueError('checkpoint is an empty path: give a checkpoint file (None keeps the '
                         'random initialisation)')
    from mmengine.config import Config
    from mmseg.apis import init_model

    from ..utils import load_matching_checkpoint
    from .runner import load_config
    cfg = config if isinstance(config, Config) else load_config(config)
    model = init_model(cfg, None, device='cpu')
    meta = load_matching_checkpoint(model, checkpoint).get('meta', {}) if checkpoint else {}
    # a checkpoint not written by a Runner has no dataset_meta
    model.dataset_meta = meta.get('dataset_meta') or test_set_metainfo(cfg)
    return model.to(device).eval()


def test_set_metainfo(cfg):
    """Classes and palette of the config's test set, without reading its files."""
    from ..checks.seg_data import build_seg_dataset
    return build_seg_dataset(cfg.test_dataloader.dataset, cfg.get('default_scope')).metainfo


# resized logits held at once by resize_to_labels: 256 MiB, i.e. a 6000 x 6000 image a class
# at a time, a 1000 x 1000 one 67 classes at a time
CHUNK_BYTES = 1 << 28


def resize_to_labels(logits, size, align_corners, threshold=None, chunk_bytes=CHUNK_BYTES):
    """mmseg's post-processing of ``logits [1, K, h, w]``: bilinear resize to the image's
    ``size`` (H, W), then the argmax over K (``sigmoid > threshold`` for K = 1), as a uint8
    [H, W] numpy label map.

    The classes are resized a few at a time (``chunk_bytes`` of resized logits), so the
    K x H x W logits (600 bytes a pixel with 150 classes) are never held at once. The labels
    equal the whole resize's: the resize treats each class on its own, and a running maximum
    that keeps the lower class on ties is the argmax."""
    import torch
    import torch.nn.functional as F
    logits = torch.as_tensor(logits)
    num_classes, (height, width) = logits.shape[1], (int(size[0]), int(size[1]))
    step = max(1, chunk_bytes // (4 * height * width))
    best = labels = None
    with torch.no_grad():
        for first in range(0, num_classes, step):
            part = F.interpolate(logits[:, first:first + step], (height, width),
                                 mode='bilinear', align_corners=align_corners)[0]
            if num_classes == 1:
                return (part[0].sigmoid() > threshold).numpy().astype(np.uint8)
            value, index = part.max(0)
            del part
            if best is None:
                best, labels = value, index.to(torch.uint8)
            else:
                better = value > best
                best = torch.where(better, value, best)
                labels = torch.where(better, (index + first).to(torch.uint8), labels)
    return labels.numpy()


def segment(model, img, chunk_bytes=CHUNK_BYTES):
    """The label map (uint8 [H, W]) of one BGR image: mmseg's ``inference_model`` (the test
    pipeline, ``model.inference``, padding removed, flip undone, resize to the image, argmax),
    with the resize and argmax in class chunks (:func:`resize_to_labels`): a 6000 x 6000
    image with 150 classes ran in 2.7 GB instead of about 23 GB (docs/deployment.md)."""
    import torch

    from ..deploy.predictor import test_pipeline
    data = test_pipeline(model.cfg)(dict(img=img))
    batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                         data_samples=[data['data_samples']]), False)
    meta = batch['data_samples'][0].metainfo
    with torch.no_grad():
        logits = model.inference(batch['inputs'], [meta])
    left, right, top, bottom = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
    logits = logits[:, :, top:logits.shape[2] - bottom, left:logits.shape[3] - right]
    if meta.get('flip'):
        logits = logits.flip(3 if meta.get('flip_direction') == 'horizontal' else 2)
    return resize_to_labels(logits, meta['ori_shape'], model.align_corners,
                            getattr(model.decode_head, 'threshold', None), chunk_bytes)


def overlay(img_bgr, label, palette, opacity):
    """``label`` painted over the image with the palette's (RGB) colours, ``opacity`` 0-1."""
    import cv2
    colours = np.asarray(palette, dtype=np.uint8)[:, ::-1]
    return cv2.addWeighted(img_bgr, 1 - opacity, colours[label % len(colours)], opacity, 0)


def infer_images(predict, images, out_dir, palette, opacity=0.5, read=None, log=print):
    """Run ``predict(img) -> label map`` on every image path; write ``out_dir/overlays/NAME.png``
    and ``out_dir/label_maps/NAME.png``. An image that fails (unreadable, or the model or the
    writing fails) is logged with its name and reason and skipped. ``read(path)`` decodes an
    image (default: mmcv's ``LoadImageFromFile`` rule, :class:`~mmseg_ext.datasets.image_io.
    ImageRule`). Returns ``(written, failed)``: paths, and ``(path, reason)`` pairs."""
    import sys

    import mmcv
    from mmengine.utils import ProgressBar

    from ..datasets.image_io import ImageReadError, ImageRule
    read = read or ImageRule().read
    for sub in ('overlays', 'label_maps'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    written, failed = [], []
    progress = ProgressBar(len(images), file=sys.stdout)
    for path in images:
        name = osp.splitext(osp.basename(path))[0] + '.png'
        try:
            img = read(path)
            label = predict(img)
            for sub, array in (('label_maps', label),
                               ('overlays', overlay(img, label, palette, opacity))):
                if not mmcv.imwrite(array, osp.join(out_dir, sub, name)):
                    raise OSError(f'cannot write {osp.join(out_dir, sub, name)}')
            written.append(path)
        except Exception as error:  # noqa: BLE001  (one bad image must not stop the others)
            reason = error.reason if isinstance(error, ImageReadError) else \
                f'{type(error).__name__}: {error}'
            failed.append((path, reason))
            log(f'\nskipped {path}: {reason}')
        progress.update()
    return written, failed


def list_images(path):
    """``path`` if it is a file, else the images in the folder ``path``, sorted."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path!r} is neither an image nor a directory')
    files = sorted(osp.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMG_EXTENSIONS))
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMG_EXTENSIONS)}) in {path!r}')
    return files


def infer_files(config, checkpoint, inputs, out_dir, device='cpu', opacity=0.5, ann_file=None,
                backend='pytorch', torch_compile=False):
    """Segment an image or a folder of images (panoptic configs too), print a summary of the
    failed ones; returns the exit status: 1 if any image failed, else 0."""
    from ..datasets.image_io import image_rule
    from ..deploy import build_predictor
    from ..deploy.predictor import test_steps
    from . import infer_panoptic, is_panoptic_config, load_config
    images = list_images(inputs)
    panoptic = is_panoptic_config(config)
    if panoptic:
        _, failed = infer_panoptic(config, checkpoint, images, out_dir, device=device,
                                   opacity=opacity, ann_file=ann_file)
    else:
        cfg = load_config(config)
        predict, palette = build_predictor(cfg, checkpoint, backend, device, torch_compile)
        _, failed = infer_images(predict, images, out_dir, palette, opacity,
                                 image_rule(test_steps(cfg)).read)
    maps = 'panoptic maps' if panoptic else 'label maps'
    print(f'\nwrote overlays and {maps} of {len(images) - len(failed)} of {len(images)} images '
          f'to {out_dir}')
    if failed:
        print(f'{len(failed)} image(s) failed:')
        for path, reason in failed:
            print(f'  {path}: {reason}')
    return 1 if failed else 0
