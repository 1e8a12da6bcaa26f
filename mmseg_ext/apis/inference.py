"""Build a segmentor for inference from a config and a checkpoint that must match it."""


def init_segmentor(config, checkpoint, device='cpu'):
    """mmseg's ``init_model`` with the exact-match check of ``tools/test.py``: a checkpoint of
    another architecture or class count is refused, naming the keys, instead of loading half
    of it with a warning. ``config`` is a path or a Config; returns the model in eval mode with
    ``dataset_meta`` (classes, palette) from the checkpoint, else from the config's test set."""
    from mmengine.config import Config
    from mmseg.apis import init_model

    from ..datasets.config_checks import build_seg_dataset
    from ..utils import load_matching_checkpoint
    from .launch import load_config
    cfg = config if isinstance(config, Config) else load_config(config)
    model = init_model(cfg, None, device='cpu')
    meta = load_matching_checkpoint(model, checkpoint).get('meta', {})
    if 'dataset_meta' in meta:
        model.dataset_meta = meta['dataset_meta']
    else:  # a checkpoint not written by a Runner
        model.dataset_meta = build_seg_dataset(cfg.test_dataloader.dataset,
                                               cfg.get('default_scope')).metainfo
    return model.to(device).eval()
