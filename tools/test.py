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
import os.path as osp

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


def _enable_visualization(cfg, args, scope):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise KeyError(f'{args.config} has no default_hooks.visualization, which --show and '
                       '--show-dir need')
    hook['enable' if scope == 'mmpretrain' else 'draw'] = True
    hook['interval'] = 1  # paint every test image, not every 50th
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = args.show_dir
        elif scope == 'mmpretrain':
            hook['out_dir'] = args.show_dir
        else:
            cfg.visualizer['save_dir'] = args.show_dir


def main():
    args = parse_args()
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)
    from mmseg_ext.apis import build_runner, enable_tta, load_config
    from mmseg_ext.apis.test_outputs import set_segmentation_outputs
    from mmseg_ext.utils import check_checkpoint_matches
    cfg = load_config(args.config, args.cfg_options)
    scope = cfg.get('default_scope', 'mmseg')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if not osp.isfile(args.checkpoint) and '://' not in args.checkpoint:
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        _enable_visualization(cfg, args, scope)
    if args.tta:
        enable_tta(cfg, args.config)
    if scope == 'mmseg':
        set_segmentation_outputs(cfg, args.out, args.cityscapes_out)
    elif args.cityscapes_out:
        raise ValueError(f'--cityscapes-out applies to segmentation (mmseg) configs, not {scope}')

    runner = build_runner(cfg, args.launcher, mode='test')
    if osp.isfile(args.checkpoint):  # fail on mismatched keys instead of a warning
        model = runner.model.module if args.tta else runner.model
        check_checkpoint_matches(getattr(model, 'module', model), args.checkpoint)
    if args.out is not None and scope != 'mmseg':
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {args.out!r}: {scope} results are dumped to a .pkl file')
        if scope == 'mmdet':
            from mmdet.evaluation import DumpDetResults as DumpResults
        else:
            from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
