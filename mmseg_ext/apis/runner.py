"""What tools/train.py and tools/test.py share: config loading with clear errors, and running
the same config on GPUs (nccl) or CPUs (gloo) without editing it.

mmengine 0.10.7 assumes CUDA for distributed runs: ``init_dist`` calls ``torch.cuda.set_device``
and the default DDP wrapper passes ``device_ids``. On a machine without CUDA we initialise the
gloo process group ourselves (mmengine then skips its own init), wrap with DDP without
``device_ids`` and turn SyncBN (CUDA only) into BN. Single-process runs need nothing: mmengine
reverts SyncBN to BN itself.
"""
import datetime
import logging
import os
import os.path as osp
import subprocess

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

from ..checks.classification_data import check_classification_data
from ..checks.config_keys import (
    check_data_roots,
    check_env_cfg,
    check_evaluator_arguments,
    check_hook_arguments,
    check_top_level_keys,
    schedule_length_warnings,
)
from ..checks.config_walk import type_name
from ..checks.seg_data import check_seg_datasets
from ..compat.checkpoint import remove_stale_temp_checkpoints
from ..compat.mmpretrain import require_mmpretrain
from ..registry import register_all_modules
from ..utils.work_dir_lock import acquire_work_dir_lock
from .resume_check import check_resume_config, check_resume_weights, read_resume_checkpoint

TRAINING_HOOKS = ('NonFiniteLossHook', 'PreemptionHook')
REGISTRY_PACKAGE = 'mmseg_ext.registry'


def load_config(path, cfg_options=None):
    """``Config.fromfile`` (which imports the config's ``custom_imports``) with an error that
    names the missing file. A config that names no :mod:`mmseg_ext.registry` family there (one
    written for an earlier mmseg_ext, whose ``import mmseg_ext`` registered everything) gets
    every family registered."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist; configs live under '
                                f'configs/ (e.g. configs/segformer/mit-b0_ade20k.py)')
    cfg = Config.fromfile(path)
    imports = cfg.get('custom_imports', {}).get('imports', [])
    if not any(name.startswith(REGISTRY_PACKAGE) for name in
               ([imports] if isinstance(imports, str) else imports)):
        print_log(f'{path} names no {REGISTRY_PACKAGE}.<family> in custom_imports: registering '
                  'every family (docs/registry.md)', logger='current')
        register_all_modules()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('default_scope') == 'mmpretrain':
        require_mmpretrain(path)
    return cfg


def _replace_sync_bn(node):
    if isinstance(node, dict):
        if node.get('type') in ('SyncBN', 'MMSyncBN'):
            node['type'] = 'BN'
        for value in node.values():
            _replace_sync_bn(value)
    elif isinstance(node, list):
        for value in node:
            _replace_sync_bn(value)


def _slurm_env():
    """Set the torch.distributed env:// variables from Slurm's, as mmengine does."""
    os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
    os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
    os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
    os.environ.setdefault('MASTER_PORT', '29500')
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        os.environ['MASTER_ADDR'] = subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1')


def _setup_cpu_distributed(cfg):
    if cfg.launcher == 'slurm':
        _slurm_env()
    elif cfg.launcher != 'pytorch':
        raise ValueError(f'--launcher {cfg.launcher} needs CUDA; on CPU use pytorch '
                         '(torchrun, tools/dist_train.sh) or slurm')
    if not dist.is_initialized():
        timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
        kwargs = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
        dist.init_process_group(backend='gloo', **kwargs)
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    _replace_sync_bn(cfg.model)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel',
            device_ids=None,  # mmengine's default [local_rank] is for GPU modules only
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    print_log(f'CPU distributed run: gloo, rank {dist.get_rank()} of {dist.get_world_size()}, '
              'SyncBN -> BN', logger='current')


def _splits(cfg, mode):
    if mode == 'test':
        return ('test', )
    return ('train', 'val') if cfg.get('val_cfg') else ('train', )


def _check_seg_data(cfg, splits):
    checks = check_seg_datasets(cfg, splits)
    for check in checks:
        for warning in check.warnings:
            print_log(warning, logger='current', level=logging.WARNING)
    errors = [error for check in checks for error in check.errors]
    if errors:
        raise ValueError('\n'.join(errors + ['(tools/misc/check_dataset.py CONFIG inspects every '
                                               'file of the data set)']))


def _add_training_hooks(cfg):
    """NonFiniteLossHook and PreemptionHook in every training run (configs may set options)."""
    hooks = cfg.get('custom_hooks') or []
    names = {type_name(hook) for hook in hooks}
    cfg.custom_hooks = list(hooks) + [dict(type=name) for name in TRAINING_HOOKS
                                      if name not in names]


def _use_resumable_epoch_loop(cfg):
    """Epoch-based training through ``ResumableEpochBasedTrainLoop`` (a mid-epoch checkpoint
    resumes with the epoch's next batch), whether the config names ``EpochBasedTrainLoop`` or
    says ``by_epoch=True``."""
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('type') == 'EpochBasedTrainLoop':
        train_cfg['type'] = 'ResumableEpochBasedTrainLoop'
    elif 'type' not in train_cfg and train_cfg.get('by_epoch'):
        train_cfg.pop('by_epoch')
        train_cfg['type'] = 'ResumableEpochBasedTrainLoop'


def _prepare_resume(cfg, new_schedule):
    """Say plainly when ``--resume`` finds nothing, instead of mmengine's 'resumed ... None';
    otherwise compare the config with the checkpoint's (``resume_check``). Returns
    ``(filename, checkpoint)`` of the checkpoint to resume from, or None."""
    if not cfg.get('resume') or cfg.get('load_from'):
        return None
    work_dir = cfg.get('work_dir') or ''
    latest = find_latest_checkpoint(work_dir) if osp.isdir(work_dir) else None
    if latest is None:
        print_log(f'--resume: no checkpoint to resume from in {work_dir} (no '
                  'last_checkpoint file): training starts from scratch.', logger='current',
                  level=logging.WARNING)
        cfg.resume = False
        return None
    if '://' in latest:
        return None
    if not osp.isfile(latest):
        raise FileNotFoundError(f'--resume: {osp.join(work_dir, "last_checkpoint")} names '
                                f'{latest}, which does not exist')
    checkpoint = read_resume_checkpoint(latest)
    if check_resume_config(cfg, latest, checkpoint, new_schedule):
        cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
            dict(type='NewScheduleOnResumeHook')]
    return latest, checkpoint


def _rank(launcher):
    """This process's global rank, also before mmengine sets ``RANK`` (Slurm, MPI on GPUs)."""
    launcher_rank = {'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}.get(launcher, 'RANK')
    return int(os.environ.get('RANK') or os.environ.get(launcher_rank) or 0)


def _claim_work_dir(cfg, lock):
    """With ``lock``, one training run per work dir (rank 0 holds ``work_dir/.train.lock`` until
    it exits); then the temporary files that killed saves left go."""
    work_dir = cfg.get('work_dir') or ''
    if '://' in work_dir or _rank(cfg.get('launcher')) != 0:
        return
    if lock and work_dir:
        acquire_work_dir_lock(work_dir, log=lambda msg: print_log(msg, logger='current'))
    if osp.isdir(work_dir):
        for path in remove_stale_temp_checkpoints(work_dir):
            print_log(f'removed {path}, left by an interrupted checkpoint save',
                      logger='current')


def prepare_config(cfg, mode='train', new_schedule=False, lock=False):
    """Check ``cfg`` before a Runner is built from it, and complete it.

    ``mode`` ('train' or 'test') picks the data splits that are checked: a test run needs no
    training data. Checks the config keys (``env_cfg`` and evaluator options included), the
    data folders and, for segmentation, the files, classes and labels
    (``mmseg_ext.checks.seg_data``, which also fills in and adds ``ValidateSegLabels``).
    Training runs remove the temporary files of killed saves (first taking the work dir's lock
    with ``lock``, as :func:`build_runner` does) and get ``NonFiniteLossHook`` and
    ``PreemptionHook``, epoch-based ones ``ResumableEpochBasedTrainLoop``, a plain ``--resume``
    decision (a checkpoint whose config differs from ``cfg`` is refused; with ``new_schedule``,
    i.e. ``--resume-with-new-schedule``, optimizer / schedule changes are applied) and then a
    warning for a schedule cut short. Returns ``(filename, checkpoint)`` of the checkpoint to
    resume from, or None.
    """
    if mode not in ('train', 'test'):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    splits = _splits(cfg, mode)
    check_top_level_keys(cfg)
    check_env_cfg(cfg)
    check_evaluator_arguments(cfg, [f'{split}_evaluator' for split in splits if split != 'train'])
    check_data_roots(cfg, splits)
    if cfg.get('default_scope') == 'mmpretrain':
        check_classification_data(cfg, splits)
    _check_seg_data(cfg, splits)
    if mode != 'train':
        return None
    _add_training_hooks(cfg)
    _use_resumable_epoch_loop(cfg)
    _claim_work_dir(cfg, lock)
    resume_from = _prepare_resume(cfg, new_schedule)
    for warning in schedule_length_warnings(cfg):
        print_log(warning, logger='current', level=logging.WARNING)
    return resume_from


def build_runner(cfg, launcher='none', mode='train', new_schedule=False):
    """Build the Runner for ``cfg`` (segmentation, panoptic or classification) on GPUs or
    CPUs, after :func:`prepare_config`; hook arguments, and the weights a ``--resume`` will
    load, are checked once the Runner exists."""
    cfg.launcher = launcher
    resume_from = prepare_config(cfg, mode, new_schedule, lock=True)
    if launcher != 'none' and not torch.cuda.is_available():
        _setup_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    check_hook_arguments(runner)
    if resume_from is not None:
        check_resume_weights(runner, *resume_from)
    return runner
