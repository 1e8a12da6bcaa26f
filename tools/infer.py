"""Segment images with a config + checkpoint; save colour overlays and raw label maps.

    python tools/infer.py CONFIG CKPT IMG_OR_DIR --out-dir DIR [--device cpu] [--opacity 0.5]
        [--backend {pytorch,onnxruntime}] [--compile]

Writes DIR/overlays/NAME.png (prediction painted over the image with the dataset palette) and
DIR/label_maps/NAME.png (uint8 class indices, as the model predicts them). mmseg's
``MMSegInferencer`` paints the same overlays but names directory inputs' label maps by their
position (``00000000_pred.png``), so they cannot be matched back to the images.

Images are read as the config's test pipeline reads them (``LoadImageFromFile``: by default
a phone photo's EXIF orientation is applied), so the label maps line up with the image as
viewers show it. An image that cannot be read or segmented is reported with its reason and
skipped; a summary ends the run, and the exit status is 1 if any image failed. Big images fit
in memory: the logits are resized and reduced to labels a few classes at a time
(docs/deployment.md).

The checkpoint must match the config exactly (the check tools/test.py uses): a checkpoint of
another architecture or class count is refused with the mismatching keys.

``--backend onnxruntime`` runs an ONNX export of tools/deployment/pytorch2onnx.py (give it as
CKPT) on CPU; ``--compile`` runs the PyTorch model under ``torch.compile``. Both give the label
maps of the plain PyTorch run (mmseg_ext/deploy/predictor.py).

Panoptic configs (mmdet scope) write overlays with class names, COCO-panoptic PNGs + segments
JSON and RLE instance masks with scores instead; ``--ann-file`` takes image and category ids
from a COCO(-panoptic) json (see mmseg_ext/apis/panoptic_inference.py).
"""
import argparse
import sys


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file; its keys and shapes must match '
                        'the config (convert other layouts with tools/model_converters/); '
                        'with --backend onnxruntime an ONNX file of pytorch2onnx.py')
    parser.add_argument('inputs', help='an image or a directory of images')
    parser.add_argument('--out-dir', required=True,
                        help='output directory; overlays/ and label_maps/ are written in it')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='weight of the class colours over the image in the overlays (0-1)')
    parser.add_argument('--ann-file', help='panoptic: COCO json giving image / category ids')
    parser.add_argument('--backend', choices=('pytorch', 'onnxruntime'), default='pytorch',
                        help='run the checkpoint in PyTorch, or an ONNX export in ONNX Runtime')
    parser.add_argument('--compile', action='store_true',
                        help='pytorch backend: run the model under torch.compile')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)

    # isort: split
    from mmseg_ext.apis.inference import infer_files
    return infer_files(args.config, args.checkpoint, args.inputs, args.out_dir, args.device,
                       args.opacity, args.ann_file, args.backend, args.compile)


if __name__ == '__main__':
    sys.exit(main())
