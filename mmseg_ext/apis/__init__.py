from .inference import init_segmentor
from .launch import build_runner, load_config, prepare_config
from .panoptic_inference import infer_panoptic, is_panoptic_config

__all__ = ['build_runner', 'infer_panoptic', 'init_segmentor', 'is_panoptic_config', 'load_config',
           'prepare_config']
