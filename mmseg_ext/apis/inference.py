"""Build a segmentor for inference from a config and a checkpoint that must match it."""


def init_segmentor(config, checkpoint=None, device='cpu'):
    """mmseg's ``init_model`` with the exact-match check of ``tools/test.py``: a checkpoint of
    another architecture or class count is refused, naming the keys, instead of loading half
    of it with a warning. ``config`` is a path or a Config; returns the model in eval mode with
    ``dataset_meta`` (classes, palette) from the checkpoint, else from the config's test set.
    ``checkpoint=None`` keeps the random initialisation; an empty path is refused."""
    if checkpoint is not None and not checkpoint:
        raise ValueError('checkpoint is an empty path: give a checkpoint file (None keeps the '
                         'random initialisation)')
    from mmengine.config import Config
    from mmseg.apis import init_model

    from ..utils import load_matching_checkpoint
    from .launch import load_config
    cfg = config if isinstance(config, Config) else load_config(config)
    model = init_model(cfg, None, device='cpu')
    meta = load_matching_checkpoint(model, checkpoint).get('meta', {}) if checkpoint else {}
    # a checkpoint not written by a Runner has no dataset_meta
    model.dataset_meta = meta.get('dataset_meta') or test_set_metainfo(cfg)
    return model.to(device).eval()


def test_set_metainfo(cfg):
    """Classes and palette of the config's test set, without reading its files."""
    from ..datasets.config_checks import build_seg_dataset
    return build_seg_dataset(cfg.test_dataloader.dataset, cfg.get('default_scope')).metainfo
