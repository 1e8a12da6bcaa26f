from .inference import init_segmentor
from .panoptic_inference import infer_panoptic, is_panoptic_config
from .runner import build_runner, load_config, prepare_config
from .tta import enable_tta, multi_scale_flip_pipeline

__all__ = ['build_runner', 'enable_tta', 'infer_panoptic', 'init_segmentor', 'is_panoptic_config',
           'load_config', 'multi_scale_flip_pipeline', 'prepare_config']
