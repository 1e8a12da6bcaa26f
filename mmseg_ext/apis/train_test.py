"""Training and testing as tools/train.py and tools/test.py run them, from their options."""
import logging
import os.path as osp


def set_work_dir(cfg, config, work_dir=None):
    """``work_dir``, else the config's ``work_dir``, else ``./work_dirs/<config name>``."""
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config))[0])


def run_training(config, work_dir=None, resume=False, new_schedule=False, amp=False,
                 cfg_options=None, launcher='none'):
    """Train ``config`` (tools/train.py); ``new_schedule``: --resume-with-new-schedule."""
    from mmengine.logging import print_log

    from . import build_runner, load_config
    cfg = load_config(config, cfg_options)
    set_work_dir(cfg, config, work_dir)
    if amp:
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')  # mmengine's default
        if wrapper_type == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        elif wrapper_type != 'OptimWrapper':
            raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper_type}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    cfg.resume = resume
    build_runner(cfg, launcher, mode='train', new_schedule=new_schedule).train()


def _enable_visualization(cfg, config, scope, show, show_dir, wait_time):
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise KeyError(f'{config} has no default_hooks.visualization, which --show and '
                       '--show-dir need')
    hook['enable' if scope == 'mmpretrain' else 'draw'] = True
    hook['interval'] = 1  # paint every test image, not every 50th
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if show_dir:
        if scope == 'mmdet':
            hook['test_out_dir'] = show_dir
        elif scope == 'mmpretrain':
            hook['out_dir'] = show_dir
        else:
            cfg.visualizer['save_dir'] = show_dir


def run_testing(config, checkpoint, work_dir=None, out=None, cityscapes_out=None, show=False,
                show_dir=None, wait_time=2, tta=False, cfg_options=None, launcher='none'):
    """Test (and evaluate) ``checkpoint`` on ``config``'s test set (tools/test.py)."""
    from ..utils import check_checkpoint_matches
    from . import build_runner, enable_tta, load_config
    from .test_outputs import set_segmentation_outputs
    cfg = load_config(config, cfg_options)
    scope = cfg.get('default_scope', 'mmseg')
    set_work_dir(cfg, config, work_dir)
    if not osp.isfile(checkpoint) and '://' not in checkpoint:
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    cfg.load_from = checkpoint
    if show or show_dir:
        _enable_visualization(cfg, config, scope, show, show_dir, wait_time)
    if tta:
        enable_tta(cfg, config)
    if scope == 'mmseg':
        set_segmentation_outputs(cfg, out, cityscapes_out)
    elif cityscapes_out:
        raise ValueError(f'--cityscapes-out applies to segmentation (mmseg) configs, not {scope}')

    runner = build_runner(cfg, launcher, mode='test')
    if osp.isfile(checkpoint):  # fail on mismatched keys instead of a warning
        model = runner.model.module if tta else runner.model
        check_checkpoint_matches(getattr(model, 'module', model), checkpoint)
    if out is not None and scope != 'mmseg':
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out {out!r}: {scope} results are dumped to a .pkl file')
        if scope == 'mmdet':
            from mmdet.evaluation import DumpDetResults as DumpResults
        else:
            from mmengine.evaluator import DumpResults
        runner.test_evaluator.metrics.append(DumpResults(out_file_path=out))
    runner.test()
