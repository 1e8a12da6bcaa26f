from .launch import build_runner, load_config, prepare_config

__all__ = ['build_runner', 'load_config', 'prepare_config']
