"""Train a segmentation (mmseg), panoptic (mmdet) or classification (mmpretrain) config; flags as
in mmseg 1.x / mmdet 3.x / mmpretrain 1.x.

Exit codes: 0 done; 75 stopped by SIGTERM / SIGUSR1 after saving a checkpoint (run again with
--resume; tools/slurm_train.sh does); other non-zero codes are errors (e.g. a NaN loss).
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a segmentor, panoptic segmentor or classifier')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work_dir (its '
                        'last_checkpoint file); without one, training starts from scratch')
    parser.add_argument('--resume-with-new-schedule', action='store_true',
                        help='with --resume: apply the config\'s optimizer settings (lr, ...) and '
                        'param_scheduler from the resumed iteration on, where they differ from '
                        'the checkpoint\'s (without it such a difference is refused)')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_iters=1000')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='process rank on this node (set by the launcher)')
    args = parser.parse_args()
    if args.resume_with_new_schedule and not args.resume:
        parser.error('--resume-with-new-schedule needs --resume')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.apis.train_test import run_training
    run_training(args.config, args.work_dir, args.resume, args.resume_with_new_schedule,
                 args.amp, args.cfg_options, args.launcher)


if __name__ == '__main__':
    main()
