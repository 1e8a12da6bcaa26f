"""Common image corruptions applied on the fly, for Cityscapes-C style robustness tests.

SegFormer (Xie et al., NeurIPS 2021, Sec. 4.4, Table 6) evaluates zero-shot robustness on
Cityscapes-C: the validation images under 16 corruptions in four families, 5 severities each.
The corruptions come from the ``imagecorruptions`` package (1.1.2), which we use unmodified.
Three of its functions break on the current stack; :func:`adapt_imagecorruptions` fixes them once,
from outside, by replacing three names in the package module's namespace only:

* ``gaussian``: scikit-image >= 0.19 replaced ``multichannel=True`` by ``channel_axis=-1`` and
  0.25 removed the keyword (``gaussian_blur`` and ``glass_blur`` fail). The module gets a wrapper
  that translates the keyword.
* ``np``: ``fog`` builds its fractal with ``np.float_``, removed in numpy 2.0. The module gets a
  numpy view that adds that alias and forwards everything else to numpy.
* ``sk``: ``impulse_noise`` calls ``skimage.util.random_noise`` without ``rng``, which then draws
  from fresh OS entropy, so seeding numpy cannot make it repeatable. The module gets a scikit-image
  view whose ``util.random_noise`` takes its ``rng`` seed from numpy's global RNG.

Nothing outside ``imagecorruptions.corruptions`` changes. Sizes: every corruption keeps any
H x W >= 32 (measured on square, 33 x 200 and 300 x 2000 images; ``frost`` rescales its texture to
cover the image and crops it). The package documents 32 px as its minimum (``pixelate`` fails on
1 x 1), so smaller images are mirror-padded to 32 px, corrupted and cropped back.
"""
import hashlib
import types
import warnings

import cv2
import numpy as np
import skimage
from mmcv.transforms import BaseTransform
from mmengine.registry import TRANSFORMS
from PIL import Image
from skimage.filters import gaussian as _skimage_gaussian

from ...compat.numpy_view import NumpyView

with warnings.catch_warnings():  # the package imports the deprecated pkg_resources
    warnings.simplefilter('ignore')
    import imagecorruptions.corruptions as _corruptions
    from imagecorruptions import corruption_dict as _corruption_functions
    from imagecorruptions import get_corruption_names

# The 16 corruptions of Cityscapes-C (SegFormer Table 6, after Kamann & Rother), by family.
CORRUPTION_FAMILIES = {
    'noise': ('gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise'),
    'blur': ('defocus_blur', 'glass_blur', 'motion_blur', 'gaussian_blur'),
    'weather': ('snow', 'frost', 'fog', 'spatter'),
    'digital': ('brightness', 'contrast', 'saturate', 'jpeg_compression'),
}
PAPER_CORRUPTIONS = tuple(name for names in CORRUPTION_FAMILIES.values() for name in names)
# The remaining functions of the package, by the family the package itself gives them.
EXTRA_FAMILY = {'zoom_blur': 'blur', 'elastic_transform': 'digital', 'pixelate': 'digital'}
ALL_CORRUPTIONS = tuple(_corruption_functions)
IMAGENET_C_CORRUPTIONS = tuple(get_corruption_names('common'))  # the package's 15 'common'
NOISE_CORRUPTIONS = CORRUPTION_FAMILIES['noise']
MIN_SIDE = 32


def corruption_family(name):
    """The family (noise, blur, weather, digital) a corruption belongs to."""
    for family, names in CORRUPTION_FAMILIES.items():
        if name in names:
            return family
    return EXTRA_FAMILY[name]


def _gaussian(image, sigma=1.0, multichannel=None, **kwargs):
    """scikit-image's gaussian accepting the pre-0.19 ``multichannel`` keyword."""
    if multichannel:
        kwargs.setdefault('channel_axis', -1)
    return _skimage_gaussian(image, sigma=sigma, **kwargs)


def _random_noise(image, mode='gaussian', rng=None, clip=True, **kwargs):
    """``skimage.util.random_noise`` seeded from numpy's global RNG when no rng is given."""
    if rng is None:
        rng = np.random.randint(2**31)
    return skimage.util.random_noise(image, mode=mode, rng=rng, clip=clip, **kwargs)


class _SeededSkimage(types.ModuleType):
    """scikit-image whose ``util.random_noise`` follows numpy's global RNG."""

    util = types.SimpleNamespace(random_noise=_random_noise)

    def __getattr__(self, name):
        return getattr(skimage, name)


def adapt_imagecorruptions():
    """Point the package module at the adapted ``gaussian``, ``np`` and ``sk`` (idempotent)."""
    if _corruptions.gaussian is _gaussian:
        return
    _corruptions.gaussian = _gaussian
    _corruptions.np = NumpyView(float_=np.float64)
    _corruptions.sk = _SeededSkimage('skimage')


adapt_imagecorruptions()


def image_seed(seed, key):
    """A 32-bit seed derived from the base seed and a per-image key (its path)."""
    digest = hashlib.sha256(f'{seed}:{key}'.encode()).digest()
    return int.from_bytes(digest[:4], 'little')


def _corrupt_rgb(rgb, name, severity):
    height, width = rgb.shape[:2]
    pad_h, pad_w = max(MIN_SIDE - height, 0), max(MIN_SIDE - width, 0)
    if pad_h or pad_w:
        top, left = pad_h // 2, pad_w // 2
        rgb = np.pad(rgb, ((top, pad_h - top), (left, pad_w - left), (0, 0)), mode='symmetric')
    else:
        top, left = 0, 0
    out = _corruption_functions[name](Image.fromarray(rgb), severity)
    out = np.uint8(np.asarray(out))
    return out[top:top + height, left:left + width]


def corrupt_image(img, name, severity, seed):
    """Corrupt a uint8 BGR (H, W, 3) or grey (H, W) image; severity 0 returns it unchanged.

    numpy's global RNG, which the package draws from, is seeded with ``seed`` for the call and
    restored afterwards, so the result depends only on (image, name, severity, seed).
    """
    if severity == 0:
        return img
    if name not in _corruption_functions:
        raise KeyError(f'unknown corruption {name!r}; choose from {ALL_CORRUPTIONS}')
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f'severity must be in 0..5, got {severity}')
    grey = img.ndim == 2
    rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB if grey else cv2.COLOR_BGR2RGB)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        out = _corrupt_rgb(rgb, name, severity)
    finally:
        np.random.set_state(state)
    return cv2.cvtColor(out, cv2.COLOR_RGB2GRAY if grey else cv2.COLOR_RGB2BGR)


@TRANSFORMS.register_module()
class ImageCorruption(BaseTransform):
    """Apply one ``imagecorruptions`` corruption to ``results['img']`` (uint8 BGR, as loaded).

    Place it right after image loading. Registered in mmengine's root TRANSFORMS, so mmseg and
    mmdet pipelines (and ``mmseg.ImageCorruption`` / ``mmdet.ImageCorruption``) both find it.

    Args:
        corruption (str): a name from ``imagecorruptions.get_corruption_names('all')``.
        severity (int): 1..5, or 0 for the clean image.
        seed (int): base seed; each image uses a seed derived from it and the image path.
    """

    def __init__(self, corruption, severity, seed=0):
        if corruption not in _corruption_functions:
            raise KeyError(f'unknown corruption {corruption!r}; choose from {ALL_CORRUPTIONS}')
        if severity not in range(6):
            raise ValueError(f'severity must be in 0..5, got {severity}')
        self.corruption = corruption
        self.severity = severity
        self.seed = seed

    def transform(self, results):
        if self.severity == 0:
            return results
        key = results.get('img_path')
        if key is None:  # an in-memory image: key on its content
            key = hashlib.sha256(np.ascontiguousarray(results['img']).tobytes()).hexdigest()
        seed = image_seed(self.seed, key)
        results['img'] = corrupt_image(results['img'], self.corruption, self.severity, seed)
        return results

    def __repr__(self):
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')
