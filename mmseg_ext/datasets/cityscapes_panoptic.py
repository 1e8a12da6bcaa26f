"""Cityscapes panoptic for mmdet: cityscapesscripts' own ``createPanopticImgs`` makes the
COCO-panoptic files; they are then laid out as mmdet's ``CocoPanopticDataset`` reads them.

``createPanopticImgs`` (``convert2panoptic``) writes ``gtFine/cityscapes_panoptic_{split}.json``
and ``gtFine/cityscapes_panoptic_{split}/*_gtFine_panoptic.png`` (19 categories, 8 things, by
label id; thing pixels without an instance become crowd segments). mmdet wants COCO's flat
layout (a PNG named as its image) and numbers categories in json order, so ``ROOT/mmdet_panoptic``
gets (see ``panoptic_conversion.write_layout``): ``{split}/NAME_leftImg8bit.png`` (links to the
images), ``annotations/panoptic_{split}.json`` (categories things first: person .. bicycle, then
road .. sky; ids, segments and image ids as createPanopticImgs wrote them),
``annotations/panoptic_{split}/NAME_leftImg8bit.png`` (links to its PNGs) and
``annotations/instances_{split}.json``.
"""
import json
from pathlib import Path

from .panoptic_conversion import flat_names, link, write_layout


def prepare_cityscapes_panoptic(root: str, splits=('train', 'val')) -> dict:
    """Run ``createPanopticImgs`` on ``root/gtFine`` and write the mmdet layout; returns the
    written paths per split and the config ``metainfo``."""
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic

    root = Path(root)
    gt_fine = root / 'gtFine'
    if not gt_fine.is_dir():
        raise FileNotFoundError(f'{gt_fine} does not exist: ROOT must hold leftImg8bit/ and '
                                'gtFine/ (with *_gtFine_instanceIds.png)')
    convert2panoptic(str(gt_fine), str(gt_fine), useTrainId=False, setNames=list(splits))
    out, written = root / 'mmdet_panoptic', {}
    for split in splits:
        source = json.loads((gt_fine / f'cityscapes_panoptic_{split}.json').read_text())
        # createPanopticImgs names the image NAME_gtFine_leftImg8bit.png; on disk it is
        # leftImg8bit/{split}/CITY/NAME_leftImg8bit.png
        paths = {im['id']: root / 'leftImg8bit' / split / im['id'].split('_')[0] /
                 f"{im['id']}_leftImg8bit.png" for im in source['images']}
        names = dict(zip(paths, flat_names(list(paths.values()))))
        for image in source['images']:
            link(paths[image['id']], out / split / names[image['id']])
            image['file_name'] = names[image['id']]
        for ann in source['annotations']:
            link(gt_fine / f'cityscapes_panoptic_{split}' / ann['file_name'],
                 out / 'annotations' / f'panoptic_{split}' / names[ann['image_id']])
            ann['file_name'] = names[ann['image_id']]
        written[split] = write_layout(out, split, source['images'], source['annotations'],
                                      source['categories'])
    return written
