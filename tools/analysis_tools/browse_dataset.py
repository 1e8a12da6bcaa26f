"""Save the samples of a config's data set as the model sees them: after the data pipeline's
transforms, with the ground truth drawn (segmentation, panoptic and classification configs).

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir DIR [--split train]
        [--max-images 20] [--cfg-options train_dataloader.dataset.data_root=PATH]

Use it on your own data to see that crops, flips and labels line up before training.
"""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True, help='the drawn samples are saved here')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train',
                        help='whose *_dataloader.dataset and pipeline to draw')
    parser.add_argument('--max-images', type=int, default=20,
                        help='draw the first N samples (0: all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.apis import load_config
    from mmseg_ext.apis.browse import browse_dataset
    cfg = load_config(args.config, args.cfg_options)
    written = browse_dataset(cfg, args.output_dir, args.split, args.max_images or None)
    print(f'\n{len(written)} samples drawn in {args.output_dir}')


if __name__ == '__main__':
    main()
