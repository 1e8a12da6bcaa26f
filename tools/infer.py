"""Segment images with a config + checkpoint; save colour overlays and raw label maps.

    python tools/infer.py CONFIG CKPT IMG_OR_DIR --out-dir DIR [--device cpu] [--opacity 0.5]
        [--backend {pytorch,onnxruntime}] [--compile]

``--backend onnxruntime`` runs an ONNX export of tools/deployment/pytorch2onnx.py (give it as
CKPT) on CPU; ``--compile`` runs the PyTorch model under ``torch.compile``. Both give the label
maps of the plain PyTorch run (mmseg_ext/deploy/predictor.py).

Panoptic configs (mmdet scope) write overlays with class names, COCO-panoptic PNGs + segments
JSON and RLE instance masks with scores instead; ``--ann-file`` takes image and category ids
from a COCO(-panoptic) json (see mmseg_ext/apis/panoptic_inference.py).

Writes DIR/overlays/NAME.png (prediction painted over the image with the dataset palette) and
DIR/label_maps/NAME.png (uint8 class indices, as the model predicts them). mmseg's
``MMSegInferencer`` paints the same overlays but names directory inputs' label maps by their
position (``00000000_pred.png``), so they cannot be matched back to the images.
"""
import argparse
import os
import os.path as osp

import mmcv
import numpy as np

import mmseg_ext  # noqa: F401  (first: its compat fixes must precede mmseg / mmdet / mmpretrain)
from mmseg_ext.deploy import build_predictor

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def list_images(path):
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path!r} is neither an image nor a directory')
    files = sorted(osp.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMG_EXTENSIONS))
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMG_EXTENSIONS)}) in {path!r}')
    return files


def overlay(img_bgr, label, palette, opacity):
    colour = np.asarray(palette, dtype=np.uint8)[label % len(palette)][..., ::-1]
    return (img_bgr * (1 - opacity) + colour * opacity).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('inputs', help='an image or a directory of images')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--opacity', type=float, default=0.5)
    parser.add_argument('--ann-file', help='panoptic: COCO json giving image / category ids')
    parser.add_argument('--backend', choices=('pytorch', 'onnxruntime'), default='pytorch')
    parser.add_argument('--compile', action='store_true', help='pytorch: torch.compile')
    args = parser.parse_args()
    from mmseg_ext.apis import infer_panoptic, is_panoptic_config
    if is_panoptic_config(args.config):
        infer_panoptic(args.config, args.checkpoint, list_images(args.inputs), args.out_dir,
                       device=args.device, opacity=args.opacity, ann_file=args.ann_file)
        return
    predict, palette = build_predictor(args.config, args.checkpoint, args.backend, args.device,
                                       args.compile)
    for sub in ('overlays', 'label_maps'):
        os.makedirs(osp.join(args.out_dir, sub), exist_ok=True)
    for path in list_images(args.inputs):
        img = mmcv.imread(path)
        if img is None:
            raise ValueError(f'cannot read image {path!r}')
        label = predict(img)
        name = osp.splitext(osp.basename(path))[0] + '.png'
        mmcv.imwrite(overlay(img, label, palette, args.opacity),
                     osp.join(args.out_dir, 'overlays', name))
        mmcv.imwrite(label, osp.join(args.out_dir, 'label_maps', name))
    print(f'wrote overlays and label maps of {len(list_images(args.inputs))} images to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()
