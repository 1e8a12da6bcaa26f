from .inference import init_segmentor
from .launch import build_runner, load_config, prepare_config

__all__ = ['build_runner', 'init_segmentor', 'load_config', 'prepare_config']
