"""Confusion matrix of a segmentation model's saved predictions (mmseg convention).

    python tools/test.py CONFIG CKPT --out preds/
    python tools/analysis_tools/confusion_matrix.py CONFIG preds/ SAVE_DIR [--split test]

Writes ``confusion_matrix.png`` (rows: ground truth, normalised to 100 %) and
``confusion_matrix.csv`` (pixel counts) to SAVE_DIR and prints each class's IoU and the pairs of
classes most often confused.
"""
import argparse

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config the predictions were made with')
    parser.add_argument('prediction_path', help='label maps written by tools/test.py --out')
    parser.add_argument('save_dir', help='the figure and the csv are written here')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='test',
                        help='whose ground truth (*_dataloader.dataset)')
    parser.add_argument('--top', type=int, default=10, help='print this many confused pairs')
    parser.add_argument('--title', default='Confusion matrix (%)', help='figure title')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import os
    import os.path as osp

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np

    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.apis import load_config
    from mmseg_ext.utils.confusion_matrix import iou_from_confusion, segmentation_confusion
    cfg = load_config(args.config, args.cfg_options)
    matrix, classes = segmentation_confusion(cfg, args.prediction_path, args.split)
    os.makedirs(args.save_dir, exist_ok=True)
    csv = osp.join(args.save_dir, 'confusion_matrix.csv')
    np.savetxt(csv, matrix, fmt='%d', delimiter=',', header=','.join(classes))
    rows = matrix.sum(1, keepdims=True)
    percent = np.divide(100 * matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = max(6, 0.35 * len(classes))
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(percent, cmap='Blues', vmin=0, vmax=100)
    ax.set_xticks(range(len(classes)), classes, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    ax.set_title(args.title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    figure = osp.join(args.save_dir, 'confusion_matrix.png')
    fig.savefig(figure, dpi=100)
    iou = iou_from_confusion(matrix)
    print(f'\n{"class":<24}{"IoU":>8}{"pixels":>12}')
    for name, value, count in zip(classes, iou, matrix.sum(1)):
        print(f'{name:<24}{value:>8.2f}{count:>12d}')
    print(f'{"mIoU":<24}{np.nanmean(iou):>8.2f}')
    off = [(matrix[i, j], classes[i], classes[j]) for i in range(len(classes))
           for j in range(len(classes)) if i != j and matrix[i, j]]
    print('\nmost confused (ground truth -> prediction, pixels):')
    for count, truth, pred in sorted(off, reverse=True)[:args.top]:
        print(f'  {truth} -> {pred}: {count}')
    print(f'\nsaved {figure} and {csv}')


if __name__ == '__main__':
    main()
