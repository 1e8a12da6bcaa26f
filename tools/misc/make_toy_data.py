"""Write built-in synthetic data in the on-disk layout of ADE20K, Cityscapes, COCO or ImageNet,
or in the custom layout of configs/segformer/mit-b0_custom-dataset.py (img/ + ann/).

Example: python tools/misc/make_toy_data.py --format ade20k --out data/toy_ade20k
See docs/toy_data.md for the scenes, classes and layouts.
"""
import argparse
import json
import time

# mmseg_ext.toy_data.images: the keys of GENERATORS, and CUSTOM_CLASSES (imported after parsing,
# so that --help stays quick)
FORMATS = ('ade20k', 'cityscapes', 'coco-panoptic', 'custom', 'imagenet')
CUSTOM_CLASSES = ('background', 'road', 'car')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--format', required=True, choices=FORMATS,
                        help='on-disk layout to write')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--num-train', type=int, help='training images (default per format)')
    parser.add_argument('--num-val', type=int, help='validation images (default per format)')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'),
                        help='image height and width (default per format)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the scenes')
    parser.add_argument('--classes', nargs='+',
                        help="custom format: toy ADE20K class names, 'background' first for a "
                        f"background class (default: {' '.join(CUSTOM_CLASSES)})")
    args = parser.parse_args(argv)
    if args.classes and args.format != 'custom':
        parser.error('--classes is for --format custom')
    if min(args.num_train or 0, args.num_val or 0, args.seed) < 0:
        parser.error('--num-train, --num-val and --seed must not be negative')
    if args.size and min(args.size) < 16:
        parser.error('--size must be at least 16 16')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.toy_data.images import GENERATORS
    given = dict(num_train=args.num_train, num_val=args.num_val,
                 size=tuple(args.size) if args.size else None, classes=args.classes)
    start = time.perf_counter()
    info = GENERATORS[args.format](
        args.out, seed=args.seed, **{k: v for k, v in given.items() if v is not None})
    print(f'{args.format}: wrote toy data in {time.perf_counter() - start:.1f} s')
    print(f'data_root: {info["data_root"]}')
    for split, where in info['splits'].items():
        print(f'{split}: ' + json.dumps(where))
    print(f'classes ({len(info["classes"])}): {", ".join(info["classes"])}')
    print(f'meta: {info["meta_file"]}')


if __name__ == '__main__':
    main()
