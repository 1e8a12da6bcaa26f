"""Export a segmentor to ONNX and check the export against PyTorch on real images.

    python tools/deployment/pytorch2onnx.py CONFIG CKPT --out model.onnx [--shape H W] [--dynamic]
        [--output {logits,labels}] [--num-images N] [--min-agreement 99.9] [--verify-only]
        [--quantize int8 [--calib-images N] | --precision fp16] [--max-miou-drop POINTS]
    python tools/deployment/pytorch2onnx.py CONFIG --random-init --out model.onnx  # untrained

The ONNX model is the whole segmentor without preprocessing outside it: input ``image``,
float32 [1, 3, H, W], raw pixel values (0-255, BGR as images are read) after the test
pipeline's resize; inside, the config's normalisation, the network and the resize of the logits
to H x W; output ``logits`` [1, K, H, W] or ``labels`` [1, H, W] (int64). ``--dynamic`` makes H
and W free (otherwise they are fixed to --shape, default the config's crop size).

The parity gate then runs PyTorch and ONNX Runtime (CPU) on the config's test images, or on the
built-in synthetic data in the same layout when the test set is not on disk, and prints the
largest logit difference, the share of pixels with the same argmax and the mIoU of both. The
tool exits with status 1 if fewer than ``--min-agreement`` % (default 99.9) of the pixels
agree. Without a checkpoint the tool stops, unless ``--random-init`` asks for untrained
weights. Run it with tools/infer.py --backend onnxruntime; time it with
tools/analysis_tools/benchmark.py --onnx.

``--quantize int8`` (static post-training quantization, calibrated on --calib-images training
images) and ``--precision fp16`` (for GPU runtimes; the gate runs it on CPU) keep LayerNorm,
Softmax and the decode head in fp32; their gate fails on an mIoU loss above --max-miou-drop
points instead of on the agreement (docs/deployment.md).
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint matching the config')
    parser.add_argument('--random-init', action='store_true',
                        help='export randomly initialised weights (no checkpoint), e.g. to '
                        'try the export or time the graph')
    parser.add_argument('--out', required=True, help='ONNX file to write (or to check with '
                        '--verify-only)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help='input size to export at (default: the config\'s crop size, '
                        'model.data_preprocessor.size, else 512 512)')
    parser.add_argument('--dynamic', action='store_true',
                        help='export with free input height and width')
    parser.add_argument('--output', choices=('logits', 'labels'), default='logits',
                        help='what the graph returns: per-class logits or the label map')
    parser.add_argument('--num-images', type=int, default=10,
                        help='test images the parity gate runs (default 10)')
    parser.add_argument('--min-agreement', type=float, metavar='PERCENT',
                        help='the gate passes if at least this share of pixels (%%) has the '
                        'same argmax (default: the gate\'s 99.9)')
    parser.add_argument('--threads', type=int, help='ONNX Runtime threads (default: all)')
    parser.add_argument('--verify-only', action='store_true',
                        help='do not export: run the parity gate on the existing --out file')
    parser.add_argument('--quantize', choices=('int8', ), help='static INT8 quantization '
                        '(ONNX Runtime, QDQ, per-channel weights)')
    parser.add_argument('--calib-images', type=int, default=8,
                        help='training images to calibrate --quantize on (default 8)')
    parser.add_argument('--precision', choices=('fp32', 'fp16'), default='fp32',
                        help='fp16: weights and activations in half precision for GPU '
                        'runtimes (LayerNorm, Softmax and the decode head stay fp32)')
    parser.add_argument('--max-miou-drop', type=float, default=0.5,
                        help='int8 / fp16: largest mIoU loss (points) against PyTorch fp32 '
                        'the gate accepts (default 0.5)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. '
                        'test_dataloader.dataset.data_root=PATH')
    args = parser.parse_args(argv)
    if args.num_images < 1:
        parser.error('--num-images must be at least 1')
    if args.min_agreement is not None and not 0 <= args.min_agreement <= 100:
        parser.error(f'--min-agreement {args.min_agreement:g}: a percentage (0-100)')
    if args.random_init and args.checkpoint:
        parser.error(f'--random-init exports untrained weights: drop it, or the checkpoint '
                     f'{args.checkpoint!r}')
    if args.random_init and args.verify_only:
        parser.error('--verify-only checks an export against the checkpoint it was made from: '
                     'give that checkpoint instead of --random-init')
    if not args.random_init and not args.checkpoint:
        parser.error('no checkpoint given (CKPT is missing or empty): pass a checkpoint file, '
                     'or --random-init to export randomly initialised weights')
    if args.checkpoint and '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint {args.checkpoint!r} does not exist (--random-init exports '
                     'randomly initialised weights instead)')
    if args.quantize and args.precision != 'fp32':
        parser.error(f'--quantize {args.quantize} and --precision {args.precision} exclude '
                     'each other')
    if args.calib_images < 1:
        parser.error('--calib-images must be at least 1')
    args.precision = args.quantize or args.precision
    return args


def main(argv=None):
    args = parse_args(argv)
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.deploy.export_and_verify import export_and_verify
    passed = export_and_verify(
        args.config, args.checkpoint, args.out, args.shape, args.dynamic, args.output,
        args.num_images, args.min_agreement, args.threads, args.verify_only, args.precision,
        args.calib_images, args.max_miou_drop, args.cfg_options, args.random_init)
    return 0 if passed else 1


if __name__ == '__main__':
    sys.exit(main())
