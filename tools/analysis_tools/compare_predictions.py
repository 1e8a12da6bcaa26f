"""Side-by-side qualitative comparison of segmentation models (as in SegFormer Figs. 5-6).

How (figures, ground truth, palette): mmseg_ext/robustness/compare_predictions.py.

Example::

    python tools/analysis_tools/compare_predictions.py \
        --models configs/a.py a.pth configs/b.py b.pth --names B0 B1 \
        --images data/ade/images/validation --max-images 4 --out-dir work_dirs/compare
    # the same images under snow, severity 3:
    ... --corruption snow --severity 3
"""
import argparse
import os.path as osp


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Compare model predictions side by side.')
    parser.add_argument('--models', nargs='+', required=True, metavar='CFG CKPT',
                        help='config and checkpoint pairs')
    parser.add_argument('--names', nargs='+', help='one label per model; default: config name')
    parser.add_argument('--images', required=True, help='an image file or a folder of images')
    parser.add_argument('--gt', help='ground-truth label map, or a folder of them (by stem)')
    parser.add_argument('--gt-reduce-zero-label', action='store_true',
                        help='--gt maps use 0 as ignore and classes from 1 (ADE20K files)')
    parser.add_argument('--out-dir', required=True,
                        help='one figure per image and a contact sheet are written here')
    parser.add_argument('--max-images', type=int, default=8, help='compare at most this many')
    parser.add_argument('--corruption', help='corrupt the images first (imagecorruptions name)')
    parser.add_argument('--severity', type=int, default=3, help='corruption severity (1-5)')
    parser.add_argument('--seed', type=int, default=0, help='base seed of the corruption')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    args = parser.parse_args(argv)
    if len(args.models) % 2:
        parser.error('--models takes CONFIG CHECKPOINT pairs')
    args.models = list(zip(args.models[::2], args.models[1::2]))
    if args.names and len(args.names) != len(args.models):
        parser.error('--names needs one name per model')
    args.names = args.names or [osp.splitext(osp.basename(c))[0] for c, _ in args.models]
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.robustness.compare_predictions import compare_predictions
    compare_predictions(args.models, args.names, args.images, args.out_dir, args.gt,
                        args.gt_reduce_zero_label, args.max_images, args.corruption,
                        args.severity, args.seed, args.device)


if __name__ == '__main__':
    main()
