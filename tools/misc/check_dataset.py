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


def print_scan(scan, fix_suggestions, out=sys.stdout):
    """Print the report of one dataset; returns the number of errors."""
    from mmseg_ext.datasets.dataset_report import class_frequencies, findings, label_table
    check = scan.check
    dataset = check.dataset
    print(f'\n== {check.key} ({type(dataset).__name__})', file=out)
    print(f'images: {len(check.samples)} under {dataset.data_prefix.get("img_path")} '
          f'(img_suffix {dataset.img_suffix!r}); skipped for their suffix: {len(check.skipped)}',
          file=out)
    masks = sum(bool(s.get('seg_map_path')) for s in check.samples)
    print(f'masks: {masks} under {dataset.data_prefix.get("seg_map_path")} '
          f'(seg_map_suffix {dataset.seg_map_suffix!r})', file=out)
    print(f'image loading: {scan.rule.describe()}', file=out)
    print('image modes: ' + (', '.join(f'{m} {n}' for m, n in scan.image_modes.items()) or '-'),
          file=out)
    print('mask modes: ' + (', '.join(f'{m} {n}' for m, n in scan.mask_modes.items()) or '-'),
          file=out)
    if scan.pixels:
        print(f'label values (classes: {len(check.classes)}, ignore_index: '
              f'{dataset.ignore_index}, reduce_zero_label: {dataset.reduce_zero_label}):',
              file=out)
        print(f'  {"value":>6} {"pixels %":>9} {"files":>6}  becomes', file=out)
        for raw, share, files, meaning in label_table(scan):
            print(f'  {raw:>6} {share:>9.2f} {files:>6}  {meaning}', file=out)
        names, fractions, weights = class_frequencies(scan)
        training = check.key.startswith('train')
        print('classes present (% of labelled pixels' +
              (', suggested weight by median frequency balancing):' if training else '):'),
              file=out)
        for i, (name, share, weight) in enumerate(zip(names, fractions, weights)):
            if share:
                print(f'  {i:>6} {name:<20} {100 * share:>6.2f}' +
                      (f' {weight:>7.3f}' if training else ''), file=out)
        if training and names:
            print(f'class_weight=[{", ".join(f"{w:.3f}" for w in weights)}]', file=out)
            if fix_suggestions:
                print('  use: model.decode_head.loss_decode.class_weight=[...] (only if rare '
                      'classes are learnt badly)', file=out)
    errors = 0
    for finding in findings(scan):
        errors += finding.level == 'error'
        print(f'{finding.level.upper()}: {finding.message}', file=out)
        if fix_suggestions and finding.fix:
            print(f'  fix: {finding.fix}', file=out)
    return errors


def main(argv=None):
    args = parse_args(argv)
    from mmengine.utils import ProgressBar

    import mmseg_ext  # noqa: F401  (registers modules)
    from mmseg_ext.apis import load_config
    from mmseg_ext.datasets.config_checks import check_seg_datasets
    from mmseg_ext.datasets.dataset_report import scan_dataset
    cfg = load_config(args.config, args.cfg_options)
    checks = check_seg_datasets(cfg, args.split)
    if not checks:
        print(f'{args.config}: no segmentation dataset in the splits {args.split}')
        return 1
    progress = ProgressBar(sum(len(c.samples) for c in checks), file=sys.stderr)
    scans = [scan_dataset(check, progress.update) for check in checks]
    print(file=sys.stderr)
    errors = sum(print_scan(scan, args.fix_suggestions) for scan in scans)
    print(f'\n{errors} error(s)' + ('' if errors else ': the data set fits the config'))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
