"""Evaluate a model on its test set under image corruptions (Cityscapes-C, SegFormer Sec. 4.4;
ImageNet-C for classifiers).

How (pairs, resume, table, plot, CE / mCE): mmseg_ext/robustness/corruption_eval.py.

Example::

    python tools/analysis_tools/robustness_eval.py CONFIG CKPT --work-dir work_dirs/rob
    python tools/analysis_tools/robustness_eval.py CONFIG CKPT \\
        --corruptions noise fog --severities 0 1 3 5
    python tools/analysis_tools/robustness_eval.py CLS_CONFIG CKPT --work-dir work_dirs/rob \\
        --baseline work_dirs/rob_baseline/robustness/results.json
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Robustness to common corruptions.')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--corruptions', nargs='+',
        help="corruption names, families (noise, blur, weather, digital) or sets: 'paper' (the 16 "
             "of SegFormer Table 6, default for segmentation), 'imagenet-c' (the package's 15 "
             "common, default for classification), 'all' (19)")
    parser.add_argument('--severities', nargs='+', type=int, default=[0, 1, 2, 3, 4, 5],
                        help='0 is the clean test set, evaluated once')
    parser.add_argument('--work-dir', help='default: ./work_dirs/<config name>')
    parser.add_argument('--seed', type=int, default=0, help='base seed of the corruptions')
    parser.add_argument('--metric', help='metric to tabulate; default mIoU (mmseg), PQ (mmdet) '
                        'or top1 (mmpretrain)')
    parser.add_argument('--baseline', help="the baseline model's results.json (written by this "
                        'tool with the same corruptions and severities): adds CE and mCE')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in tools/test.py')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='process rank on this node (set by the launcher)')
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.robustness.corruption_eval import evaluate_robustness
    evaluate_robustness(args.config, args.checkpoint, args.corruptions, args.severities,
                        args.work_dir, args.seed, args.metric, args.baseline, args.cfg_options,
                        args.launcher)


if __name__ == '__main__':
    main()
