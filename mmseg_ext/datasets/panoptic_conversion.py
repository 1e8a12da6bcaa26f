"""Users' panoptic labels -> the COCO panoptic layout that mmdet's ``CocoPanopticDataset``,
``CocoPanopticMetric`` and ``CocoMetric`` read unchanged.

Input per image: the image, a semantic-label PNG (pixel = index into the class list,
``ignore_index`` = unlabelled) and an instance-id PNG (pixel = instance id, 0 = none) of the same
size, plus a class list saying which classes are things. A thing class's pixels form one segment
per instance id; its pixels with id 0 form one crowd segment (``iscrowd=1``, as Cityscapes does).
A stuff class present in an image is one segment; instance ids must be 0 on stuff pixels.

Output, COCO's flat layout under ``out_dir`` (``write_layout``): ``{split}/`` (the images, hard
links where possible), ``annotations/panoptic_{split}.json``, ``annotations/panoptic_{split}/``
(one RGB PNG per image, named as the image, segment id = R + 256 G + 256^2 B, 0 = VOID) and
``annotations/instances_{split}.json`` (the thing segments as RLE masks, for box / mask AP).
mmdet's dataset finds a PNG under the image's file name and its metric under the image's base
name, so both are flat. Categories are listed things first, so mmdet's contiguous labels put
things before stuff as its panoptic heads expect; the matching ``metainfo`` is returned.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

INSTANCE_DTYPES = (np.uint8, np.uint16, np.int32, np.uint32)


def segment_info(mask: np.ndarray, seg_id: int, category_id: int, iscrowd: int = 0) -> dict:
    """COCO-panoptic ``segments_info`` entry of a binary mask (bbox x, y, w, h)."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return dict(id=int(seg_id), category_id=int(category_id), iscrowd=int(iscrowd),
                area=int(mask.sum()),
                bbox=[x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1])


def things_first(categories: list[dict]) -> list[dict]:
    """Thing categories, then stuff, each in the given order."""
    return [c for c in categories if c['isthing']] + [c for c in categories if not c['isthing']]


def metainfo(categories: list[dict]) -> dict:
    """The config ``metainfo`` whose label order is mmdet's for these categories."""
    ordered = things_first(categories)
    return dict(classes=tuple(c['name'] for c in ordered),
                thing_classes=tuple(c['name'] for c in ordered if c['isthing']),
                stuff_classes=tuple(c['name'] for c in ordered if not c['isthing']),
                palette=[tuple(c['color']) for c in ordered])


def instances_from_panoptic(panoptic: dict, png_dir: str | Path) -> dict:
    """COCO instance annotations (RLE masks) of the thing segments of a panoptic json."""
    from panopticapi.utils import rgb2id
    from pycocotools.mask import encode

    things = {c['id'] for c in panoptic['categories'] if c['isthing']}
    annotations = []
    for ann in panoptic['annotations']:
        thing_segments = [s for s in ann['segments_info'] if s['category_id'] in things]
        if not thing_segments:
            continue
        ids = rgb2id(np.asarray(Image.open(Path(png_dir) / ann['file_name']).convert('RGB')))
        for seg in thing_segments:
            rle = encode(np.asfortranarray((ids == seg['id']).astype(np.uint8)))
            annotations.append(dict(
                id=len(annotations) + 1, image_id=ann['image_id'],
                category_id=seg['category_id'], iscrowd=seg.get('iscrowd', 0),
                area=seg['area'], bbox=seg['bbox'],
                segmentation=dict(size=rle['size'], counts=rle['counts'].decode('ascii'))))
    categories = [c for c in panoptic['categories'] if c['isthing']]
    return dict(images=panoptic['images'], annotations=annotations, categories=categories)


def link(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (copy across file systems)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def flat_names(paths: list[Path]) -> list[str]:
    """Base names, which COCO's flat layout needs to be unique."""
    seen = {}
    for path in paths:
        if path.name in seen:
            raise ValueError(f'{seen[path.name]} and {path} have the same file name; COCO '
                             'panoptic folders are flat, rename one of them')
        seen[path.name] = path
    return [p.name for p in paths]


def write_layout(out_dir: str | Path, split: str, images: list[dict], annotations: list[dict],
                 categories: list[dict]) -> dict:
    """Write the jsons of the layout; the images and PNGs are already in place. Returns the
    paths (``img_dir``, ``panoptic``, ``panoptic_dir``, ``instances``) and ``metainfo``."""
    out = Path(out_dir)
    panoptic = dict(images=images, annotations=annotations, categories=things_first(categories))
    paths = dict(img_dir=out / split, panoptic=out / 'annotations' / f'panoptic_{split}.json',
                 panoptic_dir=out / 'annotations' / f'panoptic_{split}',
                 instances=out / 'annotations' / f'instances_{split}.json')
    paths['panoptic'].write_text(json.dumps(panoptic))
    paths['instances'].write_text(json.dumps(
        instances_from_panoptic(panoptic, paths['panoptic_dir'])))
    return dict(**{k: str(v) for k, v in paths.items()}, metainfo=metainfo(categories))


def read_classes(classes: str | list) -> list[dict]:
    """A class list (a JSON file or a list) -> categories. Entry ``i`` is semantic label ``i``:
    ``{"name": str, "isthing": bool, "id": int (default i + 1), "color": [r, g, b]}``."""
    source = classes
    if isinstance(classes, (str, Path)):
        classes = json.loads(Path(classes).read_text())
    categories = []
    for i, c in enumerate(classes):
        if 'name' not in c or 'isthing' not in c:
            raise KeyError(f'class {i} of {source}: needs "name" and "isthing", got {c}')
        color = c.get('color') or [int(v) for v in np.random.default_rng(i).integers(0, 256, 3)]
        categories.append(dict(id=int(c.get('id', i + 1)), name=c['name'],
                               isthing=int(bool(c['isthing'])), color=list(color)))
    return categories


def _check_sizes(img_path: Path, sem_path: Path, inst_path: Path, sem: np.ndarray,
                 inst: np.ndarray) -> None:
    if sem.shape != inst.shape:
        raise ValueError(f'size mismatch: {sem_path} is {sem.shape[0]}x{sem.shape[1]} but '
                         f'{inst_path} is {inst.shape[0]}x{inst.shape[1]} (H x W)')
    with Image.open(img_path) as img:
        w, h = img.size
    if (h, w) != sem.shape:
        raise ValueError(f'size mismatch: {img_path} is {h}x{w} but {sem_path} is '
                         f'{sem.shape[0]}x{sem.shape[1]} (H x W)')


def image_segments(sem: np.ndarray, inst: np.ndarray, categories: list[dict],
                   ignore_index: int, sem_path, inst_path) -> tuple[np.ndarray, list[dict]]:
    """Segment id map (0 = VOID) and segments_info of one image."""
    labels = np.unique(sem)
    bad = [int(v) for v in labels if v != ignore_index and not 0 <= v < len(categories)]
    if bad:
        raise ValueError(f'{sem_path}: label values {bad} are outside the class list '
                         f'(0..{len(categories) - 1}; {ignore_index} = unlabelled)')
    stuff = np.array([not c['isthing'] for c in categories] + [False])
    on_stuff = stuff[np.where(sem == ignore_index, len(categories), sem)] & (inst != 0)
    if on_stuff.any():
        names = sorted({categories[int(v)]['name'] for v in np.unique(sem[on_stuff])})
        raise ValueError(f'{inst_path}: instance ids {np.unique(inst[on_stuff]).tolist()} lie on '
                         f'stuff classes {names} (labels from {sem_path}); only thing classes '
                         'may carry instance ids, use 0 elsewhere')
    ids = np.zeros(sem.shape, dtype=np.int64)
    segments = []
    for label in labels:
        if label == ignore_index:
            continue
        category = categories[int(label)]
        region = sem == label
        keys = np.unique(inst[region]) if category['isthing'] else [0]
        for key in keys:
            mask = region & (inst == key) if category['isthing'] else region
            seg_id = len(segments) + 1
            ids[mask] = seg_id
            segments.append(segment_info(mask, seg_id, category['id'],
                                         iscrowd=int(category['isthing'] and key == 0)))
    return ids, segments


def convert_semantic_instance(img_dir: str, sem_dir: str, inst_dir: str, classes: str | list,
                              out_dir: str, split: str, img_suffix: str = '.jpg',
                              sem_suffix: str = '.png', inst_suffix: str = '.png',
                              ignore_index: int = 255) -> dict:
    """Convert every image under ``img_dir`` (recursively, ``*img_suffix``) whose labels are
    ``sem_dir/REL sem_suffix`` and ``inst_dir/REL inst_suffix`` (REL = its path relative to
    ``img_dir`` without ``img_suffix``). Returns the written paths and the config ``metainfo``."""
    from panopticapi.utils import id2rgb

    img_root = Path(img_dir)
    sources = sorted(img_root.rglob(f'*{img_suffix}'))
    if not sources:
        raise FileNotFoundError(f'no images *{img_suffix} under {img_dir}')
    categories = read_classes(classes)
    out = Path(out_dir)
    png_dir = out / 'annotations' / f'panoptic_{split}'
    png_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for image_id, (img_path, name) in enumerate(zip(sources, flat_names(sources)), 1):
        rel = str(img_path.relative_to(img_root))[:-len(img_suffix)]
        sem_path, inst_path = Path(sem_dir) / f'{rel}{sem_suffix}', \
            Path(inst_dir) / f'{rel}{inst_suffix}'
        for path in (sem_path, inst_path):
            if not path.is_file():
                raise FileNotFoundError(f'{path} (the labels of {img_path}) does not exist')
        sem = np.asarray(Image.open(sem_path))
        inst = np.asarray(Image.open(inst_path))
        if sem.ndim != 2 or inst.ndim != 2 or inst.dtype not in INSTANCE_DTYPES:
            raise ValueError(f'{sem_path} and {inst_path} must be single-channel PNGs')
        _check_sizes(img_path, sem_path, inst_path, sem, inst)
        ids, segments = image_segments(sem, inst, categories, ignore_index, sem_path, inst_path)
        png_name = str(Path(name).with_suffix('.png'))
        Image.fromarray(id2rgb(ids)).save(png_dir / png_name)
        link(img_path, out / split / name)
        images.append(dict(id=image_id, file_name=name, height=sem.shape[0],
                           width=sem.shape[1]))
        annotations.append(dict(image_id=image_id, file_name=png_name, segments_info=segments))
    return write_layout(out, split, images, annotations, categories)
