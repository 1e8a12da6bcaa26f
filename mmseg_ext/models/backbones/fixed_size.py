"""The common base of the ViL-LS and CvT*-LS backbones: the arch table lookup, the official
initialisation and the input-size check of models built for one input size."""
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_

from ..layers.weight_init import init_linear_or_norm

ARCH_KEYS = ('depths', 'embed_dims', 'num_heads')


def resolve_arch(model, arch, settings):
    """``arch``: a name of ``settings`` or a dict with ``depths``, ``embed_dims`` and
    ``num_heads`` (one entry per stage); returns that dict."""
    if isinstance(arch, str):
        if arch not in settings:
            raise KeyError(f'{model} arch {arch!r} is unknown; choose one of {sorted(settings)} '
                           f'or give a dict with {", ".join(ARCH_KEYS)}')
        return settings[arch]
    stages = len(next(iter(settings.values()))['depths'])
    if (not isinstance(arch, dict) or set(arch) != set(ARCH_KEYS)
            or any(len(arch[k]) != stages for k in ARCH_KEYS)):
        raise KeyError(f'{model} arch {arch!r}: a custom arch is a dict with exactly '
                       f'{", ".join(ARCH_KEYS)}, {stages} entries each')
    return arch


class FixedSizeBackbone(BaseModule):
    """Base of ViLLS and CvTLS: the official initialisation (:func:`init_linear_or_norm`;
    convolutions keep PyTorch's default; learned tokens truncated normal) unless ``init_cfg``
    loads a checkpoint."""

    def learned_tokens(self):
        """Class / global tokens and position embeddings (parameters), for the initialisation."""
        return []

    def init_weights(self):
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            super().init_weights()  # mmengine's PretrainedInit (``prefix`` works as usual)
            return
        for m in self.modules():
            init_linear_or_norm(m)
        for token in self.learned_tokens():
            trunc_normal_(token, std=.02)


def check_input_size(model, x, img_size):
    """Raise a clear error when a model built for one input size gets another."""
    if tuple(x.shape[-2:]) != tuple(img_size):
        raise ValueError(
            f'{type(model).__name__} was built for {img_size[0]}x{img_size[1]} inputs '
            f'(backbone.img_size={img_size[0]}) and got {x.shape[-2]}x{x.shape[-1]}: its '
            'position tables have a fixed size. Make the test pipeline end in a '
            f'{img_size[0]}x{img_size[1]} crop, or build the model for this size.')
