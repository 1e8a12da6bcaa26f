"""Test (and evaluate) a checkpoint: segmentation (mmseg), panoptic (mmdet) or classification
(mmpretrain) configs.

Flags as in mmseg 1.x / mmdet 3.x / mmpretrain 1.x. ``--out`` is a directory of predicted label
maps for segmentation configs (mmseg; for Cityscapes ``<image name>_labelIds.png`` in label ids,
which the official evaluation scores: tools/misc/cityscapes_eval.py) and a ``.pkl`` of results
for panoptic (mmdet) and classification (mmpretrain) configs. ``--cityscapes-out DIR`` keeps the
results of mmseg's CityscapesMetric (added if the config lacks it) in DIR.
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='segmentation: dir for predicted label maps; '
                        'panoptic and classification: .pkl file for the raw results')
    parser.add_argument('--cityscapes-out', metavar='DIR',
                        help='Cityscapes test sets: run mmseg\'s CityscapesMetric (the official '
                        'evaluation) and keep its label-id results in DIR')
    parser.add_argument('--show', action='store_true', help='show results in a window')
    parser.add_argument('--show-dir', help='dir to save painted predictions')
    parser.add_argument('--wait-time', type=float, default=2, help='interval of --show (s)')
    parser.add_argument('--tta', action='store_true',
                        help='multi-scale + flip test (the config\'s tta_pipeline, or its test '
                        'pipeline at every ratio of tta_ratios)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. test_dataloader.batch_size=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='process rank on this node (set by the launcher)')
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.apis.train_test import run_testing
    run_testing(args.config, args.checkpoint, args.work_dir, args.out, args.cityscapes_out,
                args.show, args.show_dir, args.wait_time, args.tta, args.cfg_options,
                args.launcher)


if __name__ == '__main__':
    main()
