"""What tools/train.py and tools/test.py share: config loading with clear errors, and running
the same config on GPUs (nccl) or CPUs (gloo) without editing it.

mmengine 0.10.7 assumes CUDA for distributed runs: ``init_dist`` calls ``torch.cuda.set_device``
and the default DDP wrapper passes ``device_ids``. On a machine without CUDA we initialise the
gloo process group ourselves (mmengine then skips its own init), wrap with DDP without
``device_ids`` and turn SyncBN (CUDA only) into BN. Single-process runs need nothing: mmengine
reverts SyncBN to BN itself.
"""
import datetime
import os
import os.path as osp
import subprocess

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def load_config(path, cfg_options=None):
    """``Config.fromfile`` with an error that names the missing file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist; configs live under '
                                f'configs/ (e.g. configs/segformer/mit-b0_ade20k.py)')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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


def _check_data_roots(cfg):
    """Fail early, naming the config key, when a dataset folder does not exist."""
    for split in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(split)
        if not loader or 'dataset' not in loader:
            continue
        dataset = loader['dataset']
        while 'dataset' in dataset:  # RepeatDataset / ClassBalancedDataset wrappers
            dataset = dataset['dataset']
        root = dataset.get('data_root')
        if root and not osp.isdir(root):
            raise FileNotFoundError(
                f'{split}.dataset.data_root = {root!r} does not exist. Put the dataset there '
                f'(docs/datasets.md), pass --cfg-options {split}.dataset.data_root=PATH, '
                'or generate the built-in data with tools/misc/make_toy_data.py (images) or '
                'tools/misc/make_toy_lra.py (Long Range Arena).')


def build_runner(cfg, launcher='none'):
    """Build the Runner for ``cfg`` (segmentation or panoptic) on GPUs or CPUs."""
    cfg.launcher = launcher
    _check_data_roots(cfg)
    if launcher != 'none' and not torch.cuda.is_available():
        _setup_cpu_distributed(cfg)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
