"""Check a segmentation config's data set before training: files, sizes, modes and labels.

    python tools/misc/check_dataset.py CONFIG [--split train val] [--fix-suggestions]

For each split: images and masks found and files skipped for their suffix, how images are
loaded (the config's LoadImageFromFile: whether a phone photo's EXIF orientation is applied),
unreadable files, image / mask size mismatches (images measured as loaded), photos with an EXIF
orientation tag and whether their masks follow them in display or stored order, image modes,
and a histogram of the label values against the classes, ignore_index and reduce_zero_label of
the config, with class frequencies and suggested class weights. Exits with 1 if anything would
break or silently spoil training or testing.
"""
import argparse
import sys

from mmengine.config import DictAction

SPLIT_NAMES = ('train', 'val', 'test')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file whose data set is checked')
    parser.add_argument('--split', nargs='+', choices=SPLIT_NAMES, default=['train', 'val'],
                        help='splits to check (their *_dataloader.dataset)')
    parser.add_argument('--fix-suggestions', action='store_true',
                        help='say how to fix each problem (config values, file conversions)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.checks.dataset_scan import check_dataset
    return check_dataset(args.config, args.split, args.fix_suggestions, args.cfg_options)


if __name__ == '__main__':
    sys.exit(main())
