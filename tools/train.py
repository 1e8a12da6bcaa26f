"""Train a segmentation (mmseg), panoptic (mmdet) or classification (mmpretrain) config; flags as
in mmseg 1.x / mmdet 3.x / mmpretrain 1.x.

Exit codes: 0 done; 75 stopped by SIGTERM / SIGUSR1 after saving a checkpoint (run again with
--resume; tools/slurm_train.sh does); other non-zero codes are errors (e.g. a NaN loss).
"""
import argparse
import logging
import os
import os.path as osp

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
    from mmengine.logging import print_log

    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.apis import build_runner, load_config
    cfg = load_config(args.config, args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')  # mmengine's default
        if wrapper_type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        elif wrapper_type != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper_type}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = args.resume
    build_runner(cfg, args.launcher, mode='train',
                 new_schedule=args.resume_with_new_schedule).train()


if __name__ == '__main__':
    main()
