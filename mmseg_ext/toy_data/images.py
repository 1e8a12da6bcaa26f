"""Deterministic synthetic scenes written in the on-disk layouts of ADE20K, Cityscapes, COCO and
ImageNet.

A scene is an ordered list of polygons: textured "stuff" bands that cover the image, an optional
unlabelled clutter blob, then "thing" shapes with several instances per class. Later polygons
occlude earlier ones; every mask, label map and annotation is derived from the same rasterisation
(PIL ``ImageDraw.polygon``, the routine cityscapesscripts uses), so the files agree with each other.
Each image draws from its own ``numpy.random.Generator`` seeded with ``(seed, split, index)``:
the same seed gives byte-identical files. ImageNet images show one object whose shape and texture
make its class, on random stuff bands. See docs/toy_data.md for the classes and layouts.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

JPEG_QUALITY = 95
TOY_SPLITS = ('train', 'val')  # a split's index seeds its images


@dataclass(frozen=True)
class Look:
    """Appearance of a class: base colour plus a class-specific texture."""

    color: tuple
    texture: str  # stripes | checker | rings | dots | noise
    period: float
    angle: float = 0.0  # stripe orientation in degrees
    amp: float = 35.0


LOOKS = {
    'sky': Look((115, 165, 225), 'noise', 24.0, amp=30.0),
    'wall': Look((175, 165, 150), 'stripes', 8.0, angle=90.0),
    'building': Look((135, 110, 100), 'checker', 12.0),
    'vegetation': Look((60, 115, 50), 'noise', 3.0, amp=45.0),
    'floor': Look((150, 115, 75), 'stripes', 12.0, angle=0.0),
    'grass': Look((85, 160, 60), 'stripes', 4.0, angle=70.0),
    'road': Look((105, 105, 112), 'noise', 1.5, amp=28.0),
    'sidewalk': Look((185, 175, 165), 'checker', 6.0, amp=30.0),
    'clutter': Look((128, 128, 128), 'noise', 2.5, amp=60.0),
    'person': Look((210, 140, 110), 'stripes', 6.0, angle=0.0),
    'car': Look((45, 65, 175), 'stripes', 5.0, angle=45.0),
    'box': Look((190, 150, 60), 'checker', 5.0),
    'ball': Look((220, 60, 50), 'rings', 6.0),
    'flag': Look((230, 205, 40), 'stripes', 4.0, angle=-45.0),
    'sign': Look((200, 35, 45), 'dots', 6.0),
    'bicycle': Look((40, 165, 160), 'checker', 4.0),
    'traffic_sign': Look((235, 220, 70), 'rings', 5.0),
    'kite': Look((150, 60, 200), 'stripes', 3.0, angle=-30.0),
}


@dataclass(frozen=True)
class ToyClass:
    """A class of one dataset: its own name and label value, and how it is drawn.

    ``label`` is the ADE20K label value (index + 1), the Cityscapes label id or the COCO category
    id. Stuff has a band ``rank`` (0 top .. 2 bottom); shaped classes have a ``shape``.
    """

    name: str
    label: int
    look: str
    isthing: bool = False
    rank: int = -1
    shape: str = ''
    supercategory: str = ''


ADE20K_CLASSES = (
    ToyClass('wall', 1, 'wall', rank=1),
    ToyClass('building', 2, 'building', rank=1),
    ToyClass('sky', 3, 'sky', rank=0),
    ToyClass('floor', 4, 'floor', rank=2),
    ToyClass('road', 7, 'road', rank=2),
    ToyClass('grass', 10, 'grass', rank=2),
    ToyClass('person', 13, 'person', True, shape='ellipse'),
    ToyClass('car', 21, 'car', True, shape='wide_rect'),
    ToyClass('box', 42, 'box', True, shape='square'),
    ToyClass('ball', 120, 'ball', True, shape='circle'),
    ToyClass('flag', 150, 'flag', True, shape='triangle'),
)
ADE20K_VOID = ToyClass('other', 0, 'clutter')

CITYSCAPES_CLASSES = (
    ToyClass('road', 7, 'road', rank=2),
    ToyClass('sidewalk', 8, 'sidewalk', rank=2),
    ToyClass('building', 11, 'building', rank=1),
    ToyClass('traffic sign', 20, 'traffic_sign', shape='triangle'),
    ToyClass('vegetation', 21, 'vegetation', rank=1),
    ToyClass('sky', 23, 'sky', rank=0),
    ToyClass('person', 24, 'person', True, shape='ellipse'),
    ToyClass('car', 26, 'car', True, shape='wide_rect'),
    ToyClass('bicycle', 33, 'bicycle', True, shape='hexagon'),
)
CITYSCAPES_VOID = ToyClass('static', 4, 'clutter')

COCO_PANOPTIC_CLASSES = (
    ToyClass('person', 1, 'person', True, shape='ellipse', supercategory='person'),
    ToyClass('car', 3, 'car', True, shape='wide_rect', supercategory='vehicle'),
    ToyClass('stop sign', 13, 'sign', True, shape='octagon', supercategory='outdoor'),
    ToyClass('sports ball', 37, 'ball', True, shape='circle', supercategory='sports'),
    ToyClass('kite', 38, 'kite', True, shape='diamond', supercategory='sports'),
    ToyClass('road', 149, 'road', rank=2, supercategory='ground'),
    ToyClass('sky-other-merged', 187, 'sky', rank=0, supercategory='sky'),
    ToyClass('grass-merged', 193, 'grass', rank=2, supercategory='plant'),
    ToyClass('wall-other-merged', 199, 'wall', rank=1, supercategory='wall'),
)
COCO_VOID = ToyClass('void', 0, 'clutter')

# ImageNet: the first ten classes of ILSVRC-2012 (label = index in the sorted WordNet ids, so the
# meta files are valid for a 1000-class model too). Each is drawn as an object of its own shape and
# texture; ``supercategory`` holds the WordNet id (the folder name of the train split).
IMAGENET_CLASSES = (
    ToyClass('tench', 0, 'person', True, shape='ellipse', supercategory='n01440764'),
    ToyClass('goldfish', 1, 'ball', True, shape='circle', supercategory='n01443537'),
    ToyClass('great white shark', 2, 'car', True, shape='wide_rect', supercategory='n01484850'),
    ToyClass('tiger shark', 3, 'box', True, shape='square', supercategory='n01491361'),
    ToyClass('hammerhead', 4, 'flag', True, shape='triangle', supercategory='n01494475'),
    ToyClass('electric ray', 5, 'sign', True, shape='octagon', supercategory='n01496331'),
    ToyClass('stingray', 6, 'kite', True, shape='diamond', supercategory='n01498041'),
    ToyClass('cock', 7, 'bicycle', True, shape='hexagon', supercategory='n01514668'),
    ToyClass('hen', 8, 'traffic_sign', True, shape='triangle', supercategory='n01514859'),
    ToyClass('ostrich', 9, 'building', True, shape='circle', supercategory='n01518878'),
)
# Background bands of the ImageNet images (drawn only, never a label).
IMAGENET_BACKGROUND = tuple(c for c in ADE20K_CLASSES if not c.shape)
IMAGENET_VOID = ToyClass('clutter', -1, 'clutter')

# Real Cityscapes city names, cycled over the images of a split.
CITYSCAPES_CITIES = {'train': ('aachen', 'bochum', 'bremen'),
                     'val': ('frankfurt', 'lindau', 'munster')}
COCO_FIRST_IMAGE_ID = {'train': 1, 'val': 1_000_000}


# ---------------------------------------------------------------- scene sampling


@dataclass(frozen=True)
class Segment:
    """One polygon of a scene, drawn in list order; ``polygon`` is (N, 2) int (x, y)."""

    cls: ToyClass
    polygon: np.ndarray
    void: bool = False


def _unit_shape(shape, rng):
    """Vertices of a thing's outline around the origin with radius about 1."""
    t8, t6 = np.arange(8) * np.pi / 4 + np.pi / 8, np.arange(6) * np.pi / 3
    t24 = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    if shape == 'ellipse':
        pts = np.stack([0.45 * np.cos(t24), np.sin(t24)], 1)
    elif shape == 'circle':
        pts = np.stack([np.cos(t24), np.sin(t24)], 1)
    elif shape == 'wide_rect':
        a, b, c = 1.0, 0.5, 0.15
        pts = np.array([[-a + c, -b], [a - c, -b], [a, -b + c], [a, b], [-a, b], [-a, -b + c]])
    elif shape == 'square':
        pts = np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]])
    elif shape == 'triangle':
        t3 = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        pts = np.stack([np.cos(t3), np.sin(t3)], 1)
    elif shape == 'diamond':
        pts = np.array([[0.0, -1.0], [0.6, 0.0], [0.0, 1.0], [-0.6, 0.0]])
    elif shape == 'octagon':
        pts = np.stack([np.cos(t8), np.sin(t8)], 1)
    elif shape == 'hexagon':
        pts = np.stack([np.cos(t6), np.sin(t6)], 1)
    else:
        raise ValueError(f'unknown shape {shape!r}')
    free_rotation = shape in ('square', 'triangle', 'diamond', 'hexagon')
    angle = rng.uniform(0, 2 * np.pi) if free_rotation else rng.normal(0, 0.15)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return pts @ rot.T


def _place(unit, radius, h, w, rng):
    """Scale ``unit`` and put it at a random position fully inside the image."""
    pts = unit * radius
    lo, hi = pts.min(0), pts.max(0)
    cx = rng.uniform(-lo[0], max(w - 1 - hi[0], -lo[0]))
    cy = rng.uniform(-lo[1], max(h - 1 - hi[1], -lo[1]))
    pts = np.rint(pts + [cx, cy]).astype(np.int64)
    return np.clip(pts, 0, [w - 1, h - 1])


def _stuff_bands(rng, stuff, h, w):
    """2-4 stuff classes stacked top to bottom by rank, with sloped wavy boundaries."""
    k = int(rng.integers(2, min(4, len(stuff)) + 1))
    chosen = [stuff[i] for i in rng.choice(len(stuff), k, replace=False)]
    chosen.sort(key=lambda c: (c.rank, rng.uniform()))
    full = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]])
    bands = [Segment(chosen[0], full)]
    levels = np.sort(rng.uniform(0.2, 0.85, k - 1)) * h
    xs = np.linspace(0, w - 1, 9)
    for cls, level in zip(chosen[1:], levels):
        slope = rng.uniform(-0.25, 0.25) * h / w
        amp, period, phase = rng.uniform(0, 0.06 * h), rng.uniform(0.4, 1.2) * w, rng.uniform(0, 7)
        ys = level + slope * (xs - w / 2) + amp * np.sin(2 * np.pi * xs / period + phase)
        top = np.stack([xs, np.clip(ys, 0, h - 1)], 1)
        poly = np.concatenate([top, [[w - 1, h - 1], [0, h - 1]]])
        bands.append(Segment(cls, np.rint(poly).astype(np.int64)))
    return bands


def _clutter(rng, void, h, w):
    """An irregular unlabelled blob (ADE20K 'other', Cityscapes 'static', COCO void)."""
    n = int(rng.integers(7, 11))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.5, 1.0, n)
    unit = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    return Segment(void, _place(unit, rng.uniform(0.1, 0.2) * min(h, w), h, w, rng), void=True)


def sample_scene(rng, classes, void, h, w):
    """Draw the polygons of one scene: stuff bands, maybe clutter, then 3-8 shapes."""
    stuff = [c for c in classes if not c.shape]
    shaped = [c for c in classes if c.shape]
    scene = _stuff_bands(rng, stuff, h, w)
    if rng.uniform() < 0.4:
        scene.append(_clutter(rng, void, h, w))
    for _ in range(int(rng.integers(3, 9))):
        cls = shaped[int(rng.integers(len(shaped)))]
        radius = rng.uniform(0.08, 0.22) * min(h, w)
        scene.append(Segment(cls, _place(_unit_shape(cls.shape, rng), radius, h, w, rng)))
    return scene


def rasterise(scene, h, w):
    """Index map: for every pixel the index of the last polygon covering it (-1: none)."""
    canvas = Image.new('I', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for i, seg in enumerate(scene):
        draw.polygon([tuple(p) for p in seg.polygon.tolist()], fill=i + 1)
    return np.asarray(canvas, dtype=np.int64) - 1


def drop_hidden(scene, h, w, min_area):
    """Remove shapes that occlusion leaves smaller than ``min_area`` pixels; re-rasterise."""
    while True:
        index = rasterise(scene, h, w)
        area = np.bincount(index.ravel() + 1, minlength=len(scene) + 1)[1:]
        keep = [s for s, a in zip(scene, area) if not s.cls.shape or a >= min_area]
        if len(keep) == len(scene):
            return scene, index
        scene = keep


# ---------------------------------------------------------------- rendering


def _smooth_noise(rng, h, w, cell):
    """Zero-mean, unit-std value noise: a random grid bilinearly upsampled by ``cell``."""
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.standard_normal((gh, gw))
    y, x = np.arange(h) / cell, np.arange(w) / cell
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    g = grid[y0][:, x0] * (1 - fy) * (1 - fx) + grid[y0 + 1][:, x0] * fy * (1 - fx)
    g = g + grid[y0][:, x0 + 1] * (1 - fy) * fx + grid[y0 + 1][:, x0 + 1] * fy * fx
    return (g - g.mean()) / (g.std() + 1e-6)


def texture(look, rng, h, w, centre):
    """Texture field in about [-1, 1] for the whole image; random phase and slight jitter."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    period = look.period * rng.uniform(0.85, 1.15)
    phase = rng.uniform(0, 2 * np.pi, 2)
    if look.texture == 'stripes':
        theta = np.deg2rad(look.angle + rng.normal(0, 5))
        return np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + phase[0])
    if look.texture == 'checker':
        s = np.sin(np.pi * xx / period + phase[0]) * np.sin(np.pi * yy / period + phase[1])
        return np.tanh(4 * s)
    if look.texture == 'rings':
        r = np.hypot(xx - centre[0], yy - centre[1])
        return np.sin(2 * np.pi * r / period + phase[0])
    if look.texture == 'dots':
        s = np.sin(2 * np.pi * xx / period + phase[0]) * np.sin(2 * np.pi * yy / period + phase[1])
        return np.where(s > 0.4, 1.0, -0.6)
    if look.texture == 'noise':
        return np.clip(_smooth_noise(rng, h, w, period) / 2, -1, 1)
    raise ValueError(f'unknown texture {look.texture!r}')


def render(scene, index, rng):
    """RGB uint8 image: per-segment colour jitter and texture, global gain/bias and pixel noise."""
    h, w = index.shape
    img = np.zeros((h, w, 3))
    for i, seg in enumerate(scene):
        mask = index == i
        look = LOOKS[seg.cls.look]
        color = np.asarray(look.color, float) + rng.normal(0, 10, 3)
        if seg.void:
            color = color + rng.normal(0, 40, 3)
        field = texture(look, rng, h, w, seg.polygon.mean(0))
        img[mask] = color + look.amp * rng.uniform(0.8, 1.2) * field[mask][:, None]
    img = img * rng.uniform(0.85, 1.15) + rng.normal(0, 8, 3)
    img = img + rng.normal(0, 4, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_object_image(seed, split, i, cls, size):
    """Image ``i`` of ``split`` showing one ``cls`` object (radius 25-40 % of the shorter side)
    on 2-4 stuff bands, with an unlabelled clutter blob in 40 % of the images."""
    h, w = size
    rng = np.random.default_rng([seed, TOY_SPLITS.index(split), i])
    scene = _stuff_bands(rng, IMAGENET_BACKGROUND, h, w)
    if rng.uniform() < 0.4:
        scene.append(_clutter(rng, IMAGENET_VOID, h, w))
    radius = rng.uniform(0.25, 0.4) * min(h, w)
    scene.append(Segment(cls, _place(_unit_shape(cls.shape, rng), radius, h, w, rng)))
    return render(scene, rasterise(scene, h, w), rng)


def make_scene(seed, split, i, classes, void, size):
    """Sample, rasterise and render image ``i`` of ``split``; returns (scene, index, rgb)."""
    h, w = size
    rng = np.random.default_rng([seed, TOY_SPLITS.index(split), i])
    scene, index = drop_hidden(sample_scene(rng, classes, void, h, w), h, w,
                               min_area=max(8, h * w // 1000))
    return scene, index, render(scene, index, rng)


# ---------------------------------------------------------------- writers


def _save_jpg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=JPEG_QUALITY)


def _save_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _write_json(path, obj, indent=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=indent))


def _meta(fmt, classes, void, size, seed, counts):
    """toy_meta.json content: class lists (config ``metainfo`` order) and generation settings."""
    return dict(
        format=fmt,
        classes=[c.name for c in classes],
        thing_classes=[c.name for c in classes if c.isthing],
        stuff_classes=[c.name for c in classes if not c.isthing],
        label_values=[c.label for c in classes],
        void=dict(name=void.name, label=void.label),
        size=list(size), seed=seed, num_images=counts)


def _describe(fmt, root, meta_file, classes, splits):
    return dict(format=fmt, data_root=str(root), meta_file=str(meta_file),
                classes=[c.name for c in classes],
                thing_classes=[c.name for c in classes if c.isthing],
                stuff_classes=[c.name for c in classes if not c.isthing],
                labels={c.name: c.label for c in classes}, splits=splits)


def make_ade20k(out, num_train=40, num_val=10, size=(128, 128), seed=0):
    """Write ``out/ADEChallengeData2016`` (images/*.jpg, annotations/*.png with label values)."""
    out = Path(out)
    root = out / 'ADEChallengeData2016'
    splits = {}
    for split, n, sub, prefix in (('train', num_train, 'training', 'ADE_train'),
                                  ('val', num_val, 'validation', 'ADE_val')):
        img_dir, ann_dir = root / 'images' / sub, root / 'annotations' / sub
        for i in range(n):
            scene, index, rgb = make_scene(seed, split, i, ADE20K_CLASSES, ADE20K_VOID, size)
            labels = np.array([s.cls.label for s in scene], dtype=np.uint8)[index]
            _save_jpg(img_dir / f'{prefix}_{i + 1:08d}.jpg', rgb)
            _save_png(ann_dir / f'{prefix}_{i + 1:08d}.png', labels)
        splits[split] = dict(img_dir=str(img_dir), ann_dir=str(ann_dir), num_images=n)
    meta_file = out / 'toy_meta.json'
    _write_json(meta_file, _meta('ade20k', ADE20K_CLASSES, ADE20K_VOID, size, seed,
                                 dict(train=num_train, val=num_val)), indent=2)
    return _describe('ade20k', root, meta_file, ADE20K_CLASSES, splits)


def cityscapes_polygons(scene, h, w):
    """The scene as a Cityscapes ``*_gtFine_polygons.json`` dict (objects in drawing order)."""
    objects = [dict(label=s.cls.name, polygon=s.polygon.tolist()) for s in scene]
    return dict(imgHeight=h, imgWidth=w, objects=objects)


def _cityscapes_ids(scene, index):
    """labelIds (uint8) and instanceIds (uint16: label*1000+k for things, label otherwise)."""
    ids, counts = [], {}
    for seg in scene:
        value = seg.cls.label
        if seg.cls.isthing:
            k = counts.get(seg.cls.name, 0)
            counts[seg.cls.name] = k + 1
            value = value * 1000 + k
        ids.append(value)
    label_ids = np.array([s.cls.label for s in scene], dtype=np.uint8)[index]
    return label_ids, np.array(ids, dtype=np.uint16)[index]


def make_cityscapes(out, num_train=24, num_val=6, size=(128, 256), seed=0):
    """Write leftImg8bit/*.png and gtFine/{labelIds,instanceIds,polygons.json,labelTrainIds}.

    labelTrainIds come from the official ``json2labelImg(json, png, 'trainIds')`` as produced by
    cityscapesscripts' createTrainIdLabelImgs.
    """
    from cityscapesscripts.preparation.json2labelImg import json2labelImg

    out = Path(out)
    h, w = size
    classes = CITYSCAPES_CLASSES + (CITYSCAPES_VOID,)
    splits = {}
    for split, n in (('train', num_train), ('val', num_val)):
        cities = CITYSCAPES_CITIES[split]
        for i in range(n):
            city = cities[i % len(cities)]
            stem = f'{city}_{i:06d}_000019'
            scene, index, rgb = make_scene(seed, split, i, CITYSCAPES_CLASSES, CITYSCAPES_VOID,
                                           size)
            gt = out / 'gtFine' / split / city
            _save_png(out / 'leftImg8bit' / split / city / f'{stem}_leftImg8bit.png', rgb)
            label_ids, instance_ids = _cityscapes_ids(scene, index)
            _save_png(gt / f'{stem}_gtFine_labelIds.png', label_ids)
            _save_png(gt / f'{stem}_gtFine_instanceIds.png', instance_ids)
            poly = gt / f'{stem}_gtFine_polygons.json'
            _write_json(poly, cityscapes_polygons(scene, h, w), indent=4)
            json2labelImg(str(poly), str(gt / f'{stem}_gtFine_labelTrainIds.png'), 'trainIds')
        splits[split] = dict(img_dir=str(out / 'leftImg8bit' / split),
                             ann_dir=str(out / 'gtFine' / split), num_images=n)
    meta_file = out / 'toy_meta.json'
    meta = _meta('cityscapes', CITYSCAPES_CLASSES, CITYSCAPES_VOID, size, seed,
                 dict(train=num_train, val=num_val))
    meta['all_labels'] = [c.name for c in classes]
    _write_json(meta_file, meta, indent=2)
    return _describe('cityscapes', out, meta_file, CITYSCAPES_CLASSES, splits)


def id2rgb(ids):
    """COCO panoptic id -> RGB encoding (id = R + 256 G + 256^2 B), as panopticapi.utils."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], -1).astype(np.uint8)


def _bbox(mask):
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def _coco_image(scene, index, image_id, file_name, h, w, encode_rle):
    """segments_info, the panoptic id map and instance annotations of one image."""
    segments, instances, per_cat = {}, [], {}
    seg_ids = np.zeros(len(scene), dtype=np.int64)
    for i, seg in enumerate(scene):
        if seg.void:
            continue
        cat = seg.cls.label
        if seg.cls.isthing:
            per_cat[cat] = per_cat.get(cat, 0) + 1
            seg_ids[i] = cat * 1000 + per_cat[cat]
        else:
            seg_ids[i] = cat  # stuff of one class is one segment per image
    pan = np.where(index >= 0, seg_ids[np.maximum(index, 0)], 0)
    for i, seg in enumerate(scene):
        sid = int(seg_ids[i])
        if sid == 0 or sid in segments:
            continue
        mask = pan == sid
        if not mask.any():
            continue
        area = int(mask.sum())
        segments[sid] = dict(id=sid, category_id=seg.cls.label, iscrowd=0, bbox=_bbox(mask),
                             area=area)
        if seg.cls.isthing:
            rle = encode_rle(np.asfortranarray(mask.astype(np.uint8)))
            instances.append(dict(image_id=image_id, category_id=seg.cls.label,
                                  segmentation=dict(size=[h, w],
                                                    counts=rle['counts'].decode('ascii')),
                                  area=area, bbox=segments[sid]['bbox'], iscrowd=0))
    ann = dict(image_id=image_id, file_name=file_name, segments_info=list(segments.values()))
    return ann, pan, instances


def make_coco_panoptic(out, num_train=40, num_val=10, size=(128, 160), seed=0):
    """Write {train,val}2017/*.jpg, annotations/panoptic_*2017{.json,/} and instances_*2017.json."""
    from pycocotools.mask import encode

    out = Path(out)
    h, w = size
    categories = [dict(id=c.label, name=c.name, supercategory=c.supercategory,
                       isthing=int(c.isthing), color=list(LOOKS[c.look].color))
                  for c in COCO_PANOPTIC_CLASSES]
    thing_categories = [dict(id=c['id'], name=c['name'], supercategory=c['supercategory'])
                        for c in categories if c['isthing']]
    info = dict(description='mmseg_ext synthetic toy data', version='1.0', year=2017)
    splits = {}
    for split, n in (('train', num_train), ('val', num_val)):
        images, pan_anns, inst_anns = [], [], []
        pan_dir = out / 'annotations' / f'panoptic_{split}2017'
        for i in range(n):
            image_id = COCO_FIRST_IMAGE_ID[split] + i
            name = f'{image_id:012d}'
            scene, index, rgb = make_scene(seed, split, i, COCO_PANOPTIC_CLASSES, COCO_VOID, size)
            ann, pan, instances = _coco_image(scene, index, image_id, f'{name}.png', h, w, encode)
            _save_jpg(out / f'{split}2017' / f'{name}.jpg', rgb)
            _save_png(pan_dir / f'{name}.png', id2rgb(pan))
            images.append(dict(id=image_id, file_name=f'{name}.jpg', height=h, width=w))
            pan_anns.append(ann)
            for inst in instances:
                inst_anns.append(dict(id=len(inst_anns) + 1, **inst))
        pan_json = out / 'annotations' / f'panoptic_{split}2017.json'
        inst_json = out / 'annotations' / f'instances_{split}2017.json'
        _write_json(pan_json, dict(info=info, licenses=[], images=images,
                                   annotations=pan_anns, categories=categories))
        _write_json(inst_json, dict(info=info, licenses=[], images=images,
                                    annotations=inst_anns, categories=thing_categories))
        splits[split] = dict(img_dir=str(out / f'{split}2017'), seg_dir=str(pan_dir),
                             panoptic_json=str(pan_json), instances_json=str(inst_json),
                             num_images=n)
    meta_file = out / 'toy_meta.json'
    _write_json(meta_file, _meta('coco-panoptic', COCO_PANOPTIC_CLASSES, COCO_VOID, size, seed,
                                 dict(train=num_train, val=num_val)), indent=2)
    return _describe('coco-panoptic', out, meta_file, COCO_PANOPTIC_CLASSES, splits)


CUSTOM_CLASSES = ('background', 'road', 'car')


def make_custom(out, classes=CUSTOM_CLASSES, num_train=40, num_val=10, size=(128, 128), seed=0):
    """Write ``out/img/{train,val}/*.jpg`` + ``out/ann/{train,val}/*.png``, the layout of
    ``configs/segformer/mit-b0_custom-dataset.py``, from the ADE20K scenes.

    ``classes`` are names of the toy ADE20K classes. With ``'background'`` first, label 0 is
    every other class and the unlabelled clutter is 255 (ignored): reduce_zero_label=False.
    Without it, label 0 means "unlabelled" (other classes, clutter) and ``classes[i]`` is label
    ``i + 1``: reduce_zero_label=True.
    """
    classes = tuple(classes)
    known = [c.name for c in ADE20K_CLASSES]
    background = classes[0] == 'background'
    named = classes[1:] if background else classes
    if not named or not set(named) <= set(known):
        raise ValueError(f'classes {classes}: use names of the toy ADE20K classes {known}, '
                         "optionally with 'background' first")
    offset = 0 if background else 1
    values = {c.name: classes.index(c.name) + offset if c.name in classes else 0
              for c in ADE20K_CLASSES}
    out = Path(out)
    splits = {}
    for split, n in (('train', num_train), ('val', num_val)):
        img_dir, ann_dir = out / 'img' / split, out / 'ann' / split
        for i in range(n):
            scene, index, rgb = make_scene(seed, split, i, ADE20K_CLASSES, ADE20K_VOID, size)
            void = 255 if background else 0
            labels = np.array([void if s.void else values[s.cls.name] for s in scene],
                              dtype=np.uint8)[index]
            _save_jpg(img_dir / f'{split}_{i + 1:05d}.jpg', rgb)
            _save_png(ann_dir / f'{split}_{i + 1:05d}.png', labels)
        splits[split] = dict(img_dir=str(img_dir), ann_dir=str(ann_dir), num_images=n)
    meta_file = out / 'toy_meta.json'
    _write_json(meta_file, dict(format='custom', classes=list(classes),
                                reduce_zero_label=not background, size=list(size), seed=seed,
                                num_images=dict(train=num_train, val=num_val)), indent=2)
    return dict(format='custom', data_root=str(out), meta_file=str(meta_file),
                classes=list(classes), thing_classes=[], stuff_classes=[],
                labels={name: i + offset for i, name in enumerate(classes)}, splits=splits)



def make_imagenet(out, num_train=500, num_val=100, size=(64, 64), seed=0):
    """Write the ImageNet layout mmpretrain reads: ``train/<wnid>/<wnid>_<k>.JPEG``,
    ``val/ILSVRC2012_val_<8 digits>.JPEG`` and ``meta/{train,val}.txt`` ("path label" lines).

    Classes take turns, so every class has ``num_train // 10`` or one more training images.
    """
    out = Path(out)
    splits = {}
    for split, n in (('train', num_train), ('val', num_val)):
        lines = []
        for i in range(n):
            cls = IMAGENET_CLASSES[i % len(IMAGENET_CLASSES)]
            wnid = cls.supercategory
            if split == 'train':
                name = f'{wnid}/{wnid}_{i // len(IMAGENET_CLASSES) + 1}.JPEG'
            else:
                name = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
            _save_jpg(out / split / name, make_object_image(seed, split, i, cls, size))
            lines.append(f'{name} {cls.label}\n')
        ann_file = out / 'meta' / f'{split}.txt'
        ann_file.parent.mkdir(parents=True, exist_ok=True)
        ann_file.write_text(''.join(lines))
        splits[split] = dict(img_dir=str(out / split), ann_file=str(ann_file), num_images=n)
    meta_file = out / 'toy_meta.json'
    meta = _meta('imagenet', IMAGENET_CLASSES, IMAGENET_VOID, size, seed,
                 dict(train=num_train, val=num_val))
    meta['wnids'] = [c.supercategory for c in IMAGENET_CLASSES]
    _write_json(meta_file, meta, indent=2)
    return _describe('imagenet', out, meta_file, IMAGENET_CLASSES, splits)


GENERATORS = {'ade20k': make_ade20k, 'cityscapes': make_cityscapes,
              'coco-panoptic': make_coco_panoptic, 'imagenet': make_imagenet,
              'custom': make_custom}
