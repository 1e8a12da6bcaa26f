"""Plot learning curves (loss, lr, mIoU, PQ, top-1, ...) from mmengine json logs, one panel per
key and one line per log.

    python tools/analysis_tools/analyze_logs.py WORK_DIR/<time>/vis_data/<time>.json \
        [MORE.json ...] --keys loss mIoU [--legend b0 b1] [--out curves.png]

Without ``--out`` the figure is shown in a window.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('json_logs', nargs='+', help='json logs (vis_data/*.json)')
    parser.add_argument('--keys', nargs='+', default=['mIoU'],
                        help='scalars to plot, e.g. loss lr mIoU coco_panoptic/PQ accuracy/top1')
    parser.add_argument('--legend', nargs='+', help='one name per log (default: the paths)')
    parser.add_argument('--title', help='figure title')
    parser.add_argument('--out', help='save the figure here instead of showing it')
    args = parser.parse_args(argv)
    if args.legend and len(args.legend) != len(args.json_logs):
        parser.error(f'--legend needs one name per log ({len(args.json_logs)})')
    return args


def main(argv=None):
    args = parse_args(argv)
    import matplotlib
    if args.out:
        matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mmseg_ext.utils.log_curves import load_scalars, select_curves
    curves = select_curves({path: load_scalars(path) for path in args.json_logs}, args.keys)
    names = dict(zip(args.json_logs, args.legend or args.json_logs))
    fig, axes = plt.subplots(len(args.keys), 1, figsize=(8, 3 * len(args.keys)), squeeze=False)
    for ax, (key, per_log) in zip(axes[:, 0], curves.items()):
        for path, (steps, values) in per_log.items():
            ax.plot(steps, values, label=names[path], marker='o' if len(steps) < 30 else None)
        ax.set_ylabel(key)
        ax.set_xlabel('step (iteration; epoch for epoch-based validation)')
        ax.grid(alpha=0.3)
        ax.legend()
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    if args.out:
        fig.savefig(args.out, dpi=120)
        print(f'saved {args.out}')
    else:
        plt.show()


if __name__ == '__main__':
    main()
