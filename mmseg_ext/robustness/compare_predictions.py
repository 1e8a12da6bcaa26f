"""Side-by-side qualitative comparison of segmentation models (as in SegFormer Figs. 5-6); the
command line is tools/analysis_tools/compare_predictions.py.

For each image: the image (optionally corrupted), its ground truth when known, then each model's
prediction coloured with the dataset palette and labelled with the model name. Writes one PNG per
image and ``contact_sheet.png`` with all images as rows.

Ground truth comes from ``--gt`` (a file, or a folder searched by the image's stem) or, failing
that, from the first config's test dataset when the image is one of its samples.
"""
import glob
import os
import os.path as osp

import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
IGNORE_COLOUR = (0, 0, 0)


def list_images(path, limit):
    if osp.isfile(path):
        return [path]
    files = sorted(f for f in glob.glob(osp.join(path, '**', '*'), recursive=True)
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise FileNotFoundError(f'no images under {path}')
    return files[:limit]


def _stem(path):
    return osp.splitext(osp.basename(path))[0]


def dataset_ground_truth(config):
    """{absolute image path: label-map loader} for the config's test dataset, if it builds."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.datasets.transforms import LoadAnnotations
    from mmseg.registry import DATASETS

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset_cfg = cfg.test_dataloader.dataset.copy()
    dataset_cfg['pipeline'] = []
    try:
        dataset = DATASETS.build(dataset_cfg)
    except (FileNotFoundError, OSError, ValueError) as err:
        print(f'no ground truth from {config}: {err}')
        return {}
    loader = LoadAnnotations()

    def load(info):
        info = dict(info, seg_fields=[])
        return loader(info)['gt_seg_map']

    return {osp.abspath(info['img_path']): (lambda info=info: load(info))
            for info in (dataset.get_data_info(i) for i in range(len(dataset)))}


def given_ground_truth(path, image, reduce_zero_label):
    """The label map for ``image`` from ``--gt`` (file, or folder searched by stem), or None."""
    if osp.isfile(path):
        candidates = [path]
    else:
        candidates = sorted(glob.glob(osp.join(path, '**', _stem(image) + '*'), recursive=True))
    if not candidates:
        return None
    import mmcv
    label = mmcv.imread(candidates[0], flag='unchanged', backend='pillow')
    if label.ndim == 3:
        label = label[..., 0]
    label = label.astype(np.int64)
    if reduce_zero_label:
        label = np.where(label == 0, 255, label - 1)
    return label


def colourise(label, palette):
    """Class indices -> RGB with the dataset palette; ignore (and unknown) labels are black."""
    palette = np.asarray(palette, dtype=np.uint8)
    out = np.zeros((*label.shape, 3), dtype=np.uint8)
    out[:] = IGNORE_COLOUR
    valid = (label >= 0) & (label < len(palette))
    out[valid] = palette[label[valid]]
    return out


def dataset_palette(model):
    meta = getattr(model, 'dataset_meta', None) or {}
    classes = meta.get('classes')
    palette = meta.get('palette')
    if palette is None:
        num = model.decode_head.num_classes
        palette = np.random.default_rng(0).integers(0, 255, (num, 3)).tolist()
        classes = classes or [str(i) for i in range(num)]
    return list(classes), palette


def compose_row(panels, titles, axes):
    for ax, panel, title in zip(axes, panels, titles):
        ax.imshow(panel)
        ax.set_title(title, fontsize=9)
        ax.axis('off')


def save_figure(panels, titles, legend, path):
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    compose_row(panels, titles, axes[0])
    if legend:
        handles = [Patch(color=np.asarray(c) / 255.0, label=n) for n, c in legend]
        fig.legend(handles=handles, loc='lower center', ncol=min(len(handles), 6), fontsize=8,
                   frameon=False)
    fig.tight_layout(rect=(0, 0.1 if legend else 0, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_contact_sheet(rows, titles, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(titles), squeeze=False,
                             figsize=(2.6 * len(titles), 2.4 * len(rows)))
    for r, panels in enumerate(rows):
        compose_row(panels, titles if r == 0 else [''] * len(titles), axes[r])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def legend_entries(labels, classes, palette, limit=12):
    """The classes covering most pixels across the shown label maps, largest first."""
    counts = np.zeros(len(palette), dtype=np.int64)
    for label in labels:
        valid = label[(label >= 0) & (label < len(palette))]
        counts += np.bincount(valid.ravel(), minlength=len(palette))
    order = [i for i in np.argsort(-counts) if counts[i] > 0][:limit]
    return [(classes[i] if i < len(classes) else str(i), palette[i]) for i in order]


def compare_predictions(models, names, images, out_dir, gt=None, gt_reduce_zero_label=False,
                        max_images=8, corruption=None, severity=3, seed=0, device='cpu'):
    """One figure per image (image, ground truth when known, each model's prediction) and
    ``contact_sheet.png`` in ``out_dir``. ``models``: (config, checkpoint) pairs, ``names``: one
    label each; ``images``: a file or a folder; ``gt``: a label map or a folder of them."""
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)

    # isort: split
    import mmcv
    from mmseg.apis import inference_model

    from mmseg_ext.apis import init_segmentor
    from mmseg_ext.datasets.transforms.corruption import corrupt_image, image_seed

    segmentors = [init_segmentor(cfg, ckpt, device) for cfg, ckpt in models]
    classes, palette = dataset_palette(segmentors[0])
    known_gt = {} if gt else dataset_ground_truth(models[0][0])
    paths = list_images(images, max_images)
    os.makedirs(out_dir, exist_ok=True)
    image_title = 'image' if not corruption else f'{corruption} s{severity}'
    rows = []
    for path in paths:
        bgr = mmcv.imread(path)
        if corruption:
            bgr = corrupt_image(bgr, corruption, severity, image_seed(seed, path))
        if gt:
            truth = given_ground_truth(gt, path, gt_reduce_zero_label)
        else:
            truth = known_gt[osp.abspath(path)]() if osp.abspath(path) in known_gt else None
        preds = [inference_model(m, bgr).pred_sem_seg.data[0].cpu().numpy() for m in segmentors]
        labels = ([truth] if truth is not None else []) + preds
        panels = [mmcv.bgr2rgb(bgr)] + [colourise(label, palette) for label in labels]
        titles = [image_title] + (['ground truth'] if truth is not None else []) + names
        save_figure(panels, titles, legend_entries(labels, classes, palette),
                    osp.join(out_dir, _stem(path) + '.png'))
        rows.append((panels, truth is not None))
    any_gt = any(has_gt for _, has_gt in rows)
    if any_gt:  # the sheet needs equal columns: a grey panel where an image has no labels
        rows = [(p if has_gt else [p[0], np.full_like(p[1], 128)] + p[1:], True)
                for p, has_gt in rows]
    sheet_titles = [image_title] + (['ground truth'] if any_gt else []) + names
    save_contact_sheet([p for p, _ in rows], sheet_titles,
                       osp.join(out_dir, 'contact_sheet.png'))
    print(f'{len(paths)} figures and contact_sheet.png in {out_dir}')
