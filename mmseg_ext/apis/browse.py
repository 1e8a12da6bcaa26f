"""What the data pipeline feeds the model: each sample after its transforms (crop, flip,
photometric distortion, ...), drawn with its ground truth by the config's visualizer."""
import os
import os.path as osp
import uuid

from mmengine.config import Config
from mmengine.registry import DATASETS, VISUALIZERS, init_default_scope
from mmengine.utils import ProgressBar

from mmseg_ext.checks.config_walk import SPLITS


def browse_dataset(cfg: Config, out_dir: str, split: str = 'train',
                   max_images: int | None = None) -> list[str]:
    """Write the first ``max_images`` samples of ``split`` (all if None) as the pipeline outputs
    them, with the ground truth drawn, to ``out_dir`` as ``<index>_<image name>.png``; works
    for segmentation (mmseg), panoptic (mmdet) and classification (mmpretrain) configs.
    Returns the written paths."""
    if split not in SPLITS or not cfg.get(SPLITS[split]):
        raise KeyError(f'--split {split}: the config has no {SPLITS.get(split, split)}')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg[SPLITS[split]].dataset)
    # visualizers are named singletons: a fresh name, so a second call gets its own
    visualizer = VISUALIZERS.build(dict(cfg.visualizer, name=f'browse_dataset_{uuid.uuid4()}'))
    visualizer.dataset_meta = dataset.metainfo
    os.makedirs(out_dir, exist_ok=True)
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    written, progress = [], ProgressBar(count)
    for index in range(count):
        item = dataset[index]
        image = item['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR (LoadImageFromFile)
        sample = _drawable(item['data_samples'])
        name = osp.splitext(osp.basename(sample.metainfo.get('img_path', 'sample')))[0]
        out_file = osp.join(out_dir, f'{index:05d}_{name}.png')
        # mmpretrain's visualizer draws classification samples through visualize_cls
        draw = getattr(visualizer, 'visualize_cls', visualizer.add_datasample)
        draw(name=name, image=image.copy(), data_sample=sample, draw_gt=True, draw_pred=False,
             show=False, out_file=out_file)
        written.append(out_file)
        progress.update()
    return written


def _drawable(sample):
    """mmdet's visualizer draws plain tensors: instance boxes and masks as the detector's
    predictions hold them, not the box and mask types of the data pipeline."""
    instances = sample.get('gt_instances')
    if instances is not None:
        if hasattr(instances.get('bboxes'), 'tensor'):
            instances.bboxes = instances.bboxes.tensor
        if hasattr(instances.get('masks'), 'to_ndarray'):
            instances.masks = instances.masks.to_ndarray().astype(bool)
    return sample
