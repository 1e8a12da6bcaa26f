"""How images and masks are read: one rule for training, validation, check_dataset.py, infer.py
and browse_dataset.py (docs/datasets.md, "Phone photos").

Images are read as the config's ``LoadImageFromFile`` reads them. Its default (mmcv:
``imdecode_backend='cv2'``, ``color_type='color'``, i.e. OpenCV's ``imdecode`` with
``IMREAD_COLOR``) applies a JPEG's EXIF orientation tag: the pixels come out in *display order*,
as image viewers and most annotation tools show them. Masks are read as ``LoadAnnotations``
reads them (``'unchanged'``): in *stored order*, without any EXIF rotation. So a mask must be
drawn on the image as its viewer shows it. ``color_type='color_ignore_orientation'`` reads
images in stored order instead.
"""
from dataclasses import dataclass

import numpy as np

EXIF_ORIENTATION = 0x0112
SWAPS_SIDES = (5, 6, 7, 8)  # orientations that turn the image by 90 degrees
# EXIF orientation -> numpy op turning stored pixels into display order (PIL's exif_transpose)
_TO_DISPLAY = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}
_INVERSE = {6: 8, 8: 6}


class ImageReadError(ValueError):
    """An image that cannot be decoded; ``path`` and ``reason`` say which and why."""

    def __init__(self, path, reason):
        super().__init__(f'cannot read image {path}: {reason}')
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class ImageRule:
    """The decoding options of a pipeline's ``LoadImageFromFile`` (mmcv's defaults)."""

    backend: str = 'cv2'
    color_type: str = 'color'

    @property
    def applies_exif(self):
        """True if images come out in display order (EXIF orientation applied)."""
        return self.backend in ('cv2', 'pillow') and self.color_type in ('color', 'grayscale')

    def describe(self):
        order = ('EXIF orientation applied: images in display order, as viewers show them'
                 if self.applies_exif else 'EXIF orientation ignored: images in stored order')
        return (f"LoadImageFromFile(imdecode_backend={self.backend!r}, "
                f"color_type={self.color_type!r}): {order}; masks are read in stored order")

    def read(self, path):
        """The image at ``path`` as this rule decodes it (BGR); :class:`ImageReadError` with
        the decoder's reason if it cannot."""
        import mmcv
        try:
            with open(path, 'rb') as f:
                content = f.read()
            image = mmcv.imfrombytes(content, flag=self.color_type, backend=self.backend)
        except Exception as error:  # noqa: BLE001  (any decoder error: the file is bad)
            raise ImageReadError(path, f'{type(error).__name__}: {error}') from error
        if image is None:
            raise ImageReadError(path, why_unreadable(path))
        return image


def image_rule(pipeline):
    """The :class:`ImageRule` of the first ``LoadImageFromFile`` step in ``pipeline``."""
    for step in pipeline or ():
        if isinstance(step, dict) and str(step.get('type', '')).endswith('LoadImageFromFile'):
            return ImageRule(step.get('imdecode_backend', 'cv2'),
                             step.get('color_type', 'color'))
    return ImageRule()


def why_unreadable(path):
    """The reason PIL gives for not decoding ``path`` (OpenCV gives none)."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.load()
    except Exception as error:  # noqa: BLE001
        return f'{type(error).__name__}: {error}'
    return 'OpenCV cannot decode it (PIL can: an unusual format or bit depth?)'


def exif_orientation(path_or_image):
    """The EXIF orientation tag (1-8) of an image file or PIL image; 1 if there is none."""
    from PIL import Image
    if isinstance(path_or_image, Image.Image):
        return int(path_or_image.getexif().get(EXIF_ORIENTATION, 1) or 1)
    try:
        with Image.open(path_or_image) as image:  # reads the header only
            return exif_orientation(image)
    except Exception:  # noqa: BLE001  (unreadable files are reported elsewhere)
        return 1


def to_display(array, orientation):
    """Stored pixels (H x W [x C]) in display order: the EXIF ``orientation`` applied."""
    op = _TO_DISPLAY.get(orientation)
    return array if op is None else op(array)


def to_stored(array, orientation):
    """Display-order pixels back in the order the file stores them."""
    return to_display(array, _INVERSE.get(orientation, orientation))


def edge_alignment(grey, seg):
    """How well the label boundaries of ``seg`` follow edges of ``grey`` (same H x W): the
    mean image gradient across the boundaries over the mean gradient; None without boundaries."""
    grey = grey.astype(np.float32)
    across_x, across_y = seg[:, 1:] != seg[:, :-1], seg[1:] != seg[:-1]
    count = across_x.sum() + across_y.sum()
    if not count:
        return None
    grad_x, grad_y = np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0))
    mean = (grad_x.sum() + grad_y.sum()) / (grad_x.size + grad_y.size) + 1e-6
    return float((grad_x[across_x].sum() + grad_y[across_y].sum()) / count / mean)


def mask_order(stored_grey, orientation, seg, margin=1.5):
    """In which pixel order of its image (``stored_grey``, as the file stores it, EXIF tag
    ``orientation``) the mask ``seg`` is: 'display', 'stored', or None if neither fits its
    size, or both do and the label boundaries do not follow the edges of one clearly (by a
    factor ``margin``)."""
    orders = {'display': to_display(stored_grey, orientation), 'stored': stored_grey}
    fits = {name: grey for name, grey in orders.items() if grey.shape[:2] == seg.shape[:2]}
    if len(fits) < 2:
        return next(iter(fits), None)
    display, stored = (edge_alignment(grey, seg) for grey in fits.values())
    if display is None or stored is None:
        return None
    if display > margin * stored:
        return 'display'
    return 'stored' if stored > margin * display else None
