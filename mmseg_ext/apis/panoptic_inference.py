"""Panoptic inference on users' images (``tools/infer.py`` with a panoptic config).

Per image NAME, under ``out_dir``:

- ``overlays/NAME.png``: the segments painted over the image with their class names
  (mmdet's ``DetLocalVisualizer``);
- ``panoptic/NAME.png`` and ``panoptic/NAME.json``: the COCO-panoptic PNG (segment id =
  R + 256 G + 256^2 B, 0 = VOID) and its annotation (``image_id``, ``file_name``,
  ``segments_info``);
- ``instances/NAME.json``: the thing instances in COCO result format (``bbox`` x, y, w, h,
  ``score``, mask as RLE ``segmentation``), best first.

``panoptic.json`` (annotations + categories: panopticapi's prediction file, with ``panoptic/``
as its folder) and ``instances.json`` (all COCO results) collect every image. Image and category
ids come from ``ann_file`` (a COCO or COCO-panoptic json whose ``images`` give each file name
its id and whose ``categories`` give each class name its id) so that the outputs evaluate
against that ground truth; without it the image id is the file stem and category ids are
class index + 1.
"""
import json
import os.path as osp
from pathlib import Path

import numpy as np

PANOPTIC_LOADERS = ('LoadPanopticAnnotations', 'LoadAnnotations')


def is_panoptic_config(config: str) -> bool:
    """Panoptic configs of this project run in mmdet's scope; segmentation ones in mmseg's."""
    from mmengine.config import Config
    return Config.fromfile(config).get('default_scope') == 'mmdet'


def _categories(meta: dict, ann_file: str | None) -> list[dict]:
    """One COCO-panoptic category per class, in the model's label order."""
    thing = set(meta.get('thing_classes', ()))
    ids = {name: i + 1 for i, name in enumerate(meta['classes'])}
    if ann_file:
        known = {c['name']: c['id'] for c in json.loads(Path(ann_file).read_text())['categories']}
        missing = [name for name in meta['classes'] if name not in known]
        if missing:
            raise KeyError(f'classes {missing} of the model are not categories of {ann_file}')
        ids = known
    palette = meta.get('palette') or [(0, 0, 0)] * len(meta['classes'])
    return [dict(id=ids[name], name=name, isthing=int(name in thing), color=list(color))
            for name, color in zip(meta['classes'], palette)]


def _image_ids(ann_file: str | None) -> dict[str, object]:
    if not ann_file:
        return {}
    images = json.loads(Path(ann_file).read_text())['images']
    return {osp.basename(im['file_name']): im['id'] for im in images}


def _test_pipeline(cfg):
    """The config's test pipeline without annotation loading (users' images have none)."""
    from mmcv.transforms import Compose
    from mmdet.utils import get_test_pipeline_cfg
    steps = [s for s in get_test_pipeline_cfg(cfg)
             if str(s['type']).split('.')[-1] not in PANOPTIC_LOADERS]
    return Compose(steps)


def panoptic_to_coco(pan: np.ndarray, num_classes: int, categories: list[dict]
                     ) -> tuple[np.ndarray, list[dict]]:
    """mmdet's panoptic map (``label + instance * INSTANCE_OFFSET``, VOID = ``num_classes``) ->
    (COCO-panoptic RGB PNG, segments_info) with segment ids 1, 2, ... ."""
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from panopticapi.utils import id2rgb

    from mmseg_ext.datasets.panoptic_conversion import segment_info
    ids = np.zeros(pan.shape, dtype=np.int64)
    segments = []
    for value in np.unique(pan):
        label = int(value % INSTANCE_OFFSET)
        if label >= num_classes:
            continue
        mask = pan == value
        ids[mask] = len(segments) + 1
        segments.append(segment_info(mask, len(segments) + 1, categories[label]['id']))
    return id2rgb(ids), segments


def instances_to_coco(instances, image_id, categories: list[dict]) -> list[dict]:
    """``pred_instances`` -> COCO results (boxes x, y, w, h; masks as RLE), best first."""
    from pycocotools.mask import encode
    results = []
    for box, label, score, mask in zip(instances.bboxes.tolist(), instances.labels.tolist(),
                                       instances.scores.tolist(), instances.masks.cpu().numpy()):
        rle = encode(np.asfortranarray(mask.astype(np.uint8)))
        results.append(dict(image_id=image_id, category_id=categories[label]['id'],
                            bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                            score=float(score),
                            segmentation=dict(size=rle['size'],
                                              counts=rle['counts'].decode('ascii'))))
    return results


def infer_panoptic(config: str, checkpoint: str, images: list[str], out_dir: str,
                   device: str = 'cpu', opacity: float = 0.5,
                   ann_file: str | None = None) -> dict:
    """Run a panoptic model over ``images`` and write the files listed in the module docstring.

    An image that fails (unreadable, or the model fails on it) is reported with its name and
    reason and skipped. Returns ``(dict(panoptic=PATH, instances=PATH), failed)``: the collected
    json files, and ``(path, reason)`` pairs.
    """
    import cv2
    import torch
    from mmdet.apis import init_detector
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.utils import ProgressBar

    from ..utils import check_checkpoint_matches
    model = init_detector(config, checkpoint, device=device)
    # mmdet loads non-strictly, with a warning; refuse a checkpoint of another model, as
    # tools/test.py does
    check_checkpoint_matches(model, checkpoint)
    meta = model.dataset_meta
    num_classes = len(meta['classes'])
    categories = _categories(meta, ann_file)
    image_ids = _image_ids(ann_file)
    pipeline = _test_pipeline(model.cfg)
    visualizer = DetLocalVisualizer(name=f'infer_panoptic_{id(model)}', alpha=opacity)
    visualizer.dataset_meta = meta
    out = Path(out_dir)
    for sub in ('overlays', 'panoptic', 'instances'):
        (out / sub).mkdir(parents=True, exist_ok=True)
    annotations, results, failed = [], [], []
    progress = ProgressBar(len(images))
    for path in images:
        name = Path(path).stem
        image_id = image_ids.get(osp.basename(path), name)
        try:
            data = pipeline(dict(img_path=path, img_id=0))
            with torch.no_grad():
                sample = model.test_step(dict(inputs=[data['inputs']],
                                              data_samples=[data['data_samples']]))[0]
            pan = sample.pred_panoptic_seg.sem_seg[0].cpu().numpy()
            png, segments = panoptic_to_coco(pan, num_classes, categories)
            cv2.imwrite(str(out / 'panoptic' / f'{name}.png'), png[..., ::-1])
            annotation = dict(image_id=image_id, file_name=f'{name}.png',
                              segments_info=segments)
            (out / 'panoptic' / f'{name}.json').write_text(json.dumps(annotation))
            instances = instances_to_coco(sample.pred_instances, image_id, categories)
            (out / 'instances' / f'{name}.json').write_text(json.dumps(instances))

            image = cv2.imread(path)[..., ::-1]
            drawn = sample.clone()
            del drawn.pred_instances  # only the panoptic segments are drawn
            if segments:
                visualizer.add_datasample(name, image, drawn, draw_gt=False, show=False)
                image = visualizer.get_image()
            cv2.imwrite(str(out / 'overlays' / f'{name}.png'),
                        np.ascontiguousarray(image[..., ::-1]))
        except Exception as error:  # noqa: BLE001  (one bad image must not stop the others)
            failed.append((path, f'{type(error).__name__}: {error}'))
            print(f'\nskipped {path}: {failed[-1][1]}')
        else:
            annotations.append(annotation)
            results.extend(instances)
        progress.update()
    files = dict(panoptic=str(out / 'panoptic.json'), instances=str(out / 'instances.json'))
    Path(files['panoptic']).write_text(json.dumps(dict(annotations=annotations,
                                                       categories=categories)))
    Path(files['instances']).write_text(json.dumps(results))
    return files, failed
