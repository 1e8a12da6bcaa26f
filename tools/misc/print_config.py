"""Print a config as the tools run it: its bases merged and --cfg-options applied.

    python tools/misc/print_config.py CONFIG [--cfg-options k=v ...] [--save-path merged.py]
"""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    parser.add_argument('--save-path', help='also write the merged config to this .py file')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.apis import load_config
    cfg = load_config(args.config, args.cfg_options)
    print(cfg.pretty_text)
    if args.save_path:
        cfg.dump(args.save_path)
        print(f'saved {args.save_path}')


if __name__ == '__main__':
    main()
