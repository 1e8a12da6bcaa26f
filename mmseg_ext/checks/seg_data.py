"""Checks, before anything is trained or tested, that a segmentation config's files, classes,
labels and model agree. ``mmseg_ext.apis.build_runner`` runs them on the splits a tool uses;
``tools/misc/check_dataset.py`` starts from them and then reads every file.

What is checked, per mmseg dataset (``BaseSegDataset`` and its subclasses):

* its image folder exists and holds images with ``img_suffix`` (other images there are skipped by
  mmseg: reported), and every image has its mask;
* the model's heads have as many classes as the dataset's ``metainfo['classes']``, and the same
  ``ignore_index``;
* ``LoadAnnotations`` does not set a ``reduce_zero_label`` other than the dataset's, and
  ``reduce_zero_label=True`` is not combined with a 'background' class 0;
* every pipeline with ``LoadAnnotations`` validates labels, mask sizes and the pixel order of
  EXIF-rotated photos' masks (``ValidateSegLabels``, added where missing) with the dataset's
  class count and its ``LoadImageFromFile`` rule (:mod:`mmseg_ext.datasets.image_io`).
"""
import copy
import os
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field

from mmengine.registry import DATASETS

from ..datasets.image_io import image_rule
from .config_walk import short_list, split_datasets, type_name

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
BACKGROUND_NAMES = ('background', 'bg', 'backgroud', 'back ground')


@dataclass
class DatasetCheck:
    """One dataset of a config: where it is (``key``), the dataset (built without pipeline,
    its files listed in ``samples``), its pipeline config, and what the checks found."""

    key: str
    dataset: object = None
    pipeline: list = field(default_factory=list)
    samples: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # image files mmseg skips for their suffix
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def classes(self):
        return tuple(self.dataset.metainfo.get('classes') or ()) if self.dataset is not None else ()


def build_seg_dataset(dataset_cfg, scope):
    """The mmseg dataset of ``dataset_cfg`` without pipeline and without listing its files;
    None for datasets of other kinds (detection, classification, text)."""
    from mmseg.datasets import BaseSegDataset
    kind = dataset_cfg.get('type')
    with DATASETS.switch_scope_and_registry(scope) as registry:
        cls = registry.get(kind) if isinstance(kind, str) else kind
        if not (isinstance(cls, type) and issubclass(cls, BaseSegDataset)):
            return None
        cfg = copy.deepcopy(dict(dataset_cfg))
        cfg.update(pipeline=[], lazy_init=True)
        return registry.build(cfg)


def _walk_files(root):
    for folder, _, files in os.walk(root):
        for name in files:
            yield osp.relpath(osp.join(folder, name), root)


def _suffix(name):
    return osp.splitext(name)[1].lower() or name


def _list_files(check, dataset_cfg):
    """Fill ``check.samples`` (mmseg's own listing) and ``check.skipped``; errors for no
    images, a missing folder or images without masks."""
    dataset, key = check.dataset, check.key
    img_dir = dataset.data_prefix.get('img_path') or ''
    try:
        check.samples = dataset.load_data_list()
    except (FileNotFoundError, NotADirectoryError, AssertionError) as error:
        check.errors.append(f'{key}: cannot list the data ({error}); check {key}.data_root, '
                            f'{key}.data_prefix and {key}.ann_file')
        return
    uses_folder = not dataset.ann_file or osp.isdir(dataset.ann_file)
    if uses_folder and osp.isdir(img_dir):
        check.skipped = sorted(f for f in _walk_files(img_dir)
                               if f.lower().endswith(IMAGE_SUFFIXES)
                               and not f.endswith(dataset.img_suffix))
    if not check.samples:
        found = Counter(_suffix(f) for f in check.skipped).most_common()
        hint = (f'; it holds {", ".join(f"{n} {s!r}" for s, n in found)} files: set '
                f'{key}.img_suffix={found[0][0]!r}' if found else '; it holds no images')
        check.errors.append(f'{key}: no images ending in img_suffix={dataset.img_suffix!r} '
                            f'under {img_dir}{hint}')
        return
    if check.skipped:
        check.warnings.append(
            f'{key}: {len(check.skipped)} image files under {img_dir} do not end in '
            f'img_suffix={dataset.img_suffix!r} and are skipped: {short_list(check.skipped, 5)}')
    missing = [s for s in check.samples
               if s.get('seg_map_path') and not osp.isfile(s['seg_map_path'])]
    if missing:
        ann_dir = dataset.data_prefix.get('seg_map_path')
        check.errors.append(
            f'{key}: {len(missing)} of {len(check.samples)} images have no mask, e.g. '
            f'{missing[0]["img_path"]} -> {missing[0]["seg_map_path"]} '
            f'(seg_map_suffix={dataset.seg_map_suffix!r}; masks are looked for under {ann_dir})')


def _heads(model_cfg):
    while 'module' in model_cfg:  # a TTA wrapper around the segmentor
        model_cfg = model_cfg['module']
    for name in ('decode_head', 'auxiliary_head'):
        heads = model_cfg.get(name)
        heads = heads if isinstance(heads, (list, tuple)) else [heads]
        for i, head in enumerate(heads):
            if head:
                yield (f'model.{name}' + (f'[{i}]' if len(heads) > 1 else '')), head


def _check_model(check, model_cfg):
    classes, dataset = check.classes, check.dataset
    for name, head in _heads(model_cfg):
        if classes and head.get('num_classes') not in (None, len(classes)):
            check.errors.append(
                f'{name}.num_classes = {head["num_classes"]} but {check.key} has '
                f'{len(classes)} classes ({short_list(classes)}): set '
                f'{name}.num_classes={len(classes)} '
                "(configs/segformer/mit-b0_custom-dataset.py derives it from the class list)")
        if head.get('ignore_index', 255) != dataset.ignore_index:
            check.errors.append(
                f'{name}.ignore_index = {head.get("ignore_index", 255)} but {check.key}.'
                f'ignore_index = {dataset.ignore_index}: the loss would learn the ignored value')


def _check_reduce_zero_label(check):
    classes = check.classes
    if check.dataset.reduce_zero_label and classes and \
            str(classes[0]).strip().lower() in BACKGROUND_NAMES:
        check.errors.append(
            f'{check.key}: reduce_zero_label=True ignores label 0 and shifts every other label '
            f'down by one, so class 0 ({classes[0]!r}) would be learned from label value 1. If '
            f'label 0 is your {classes[0]!r} class, set reduce_zero_label=False; if 0 means '
            f'"unlabelled", remove {classes[0]!r} from the classes.')


def _check_pipeline(check, pipeline):
    """Check LoadAnnotations / ValidateSegLabels; fill in or add ValidateSegLabels."""
    dataset, key = check.dataset, f'{check.key}.pipeline'
    num_classes = len(check.classes) or None
    load_at, validated = None, False
    for i, step in enumerate(pipeline):
        name = type_name(step)
        if name == 'LoadAnnotations' and isinstance(step, dict):
            load_at = i
            given = step.get('reduce_zero_label')
            if given is not None and bool(given) != bool(dataset.reduce_zero_label):
                check.errors.append(
                    f'{key}[{i}]: LoadAnnotations(reduce_zero_label={given}) but the dataset '
                    f'has reduce_zero_label={dataset.reduce_zero_label}. Set it once, on the '
                    'dataset: LoadAnnotations() takes it from there.')
        elif name == 'ValidateSegLabels' and isinstance(step, dict):
            validated = True
            if step.get('num_classes') is None:
                step['num_classes'] = num_classes
            elif num_classes and step['num_classes'] != num_classes:
                check.errors.append(
                    f'{key}[{i}]: ValidateSegLabels(num_classes={step["num_classes"]}) but the '
                    f'dataset has {num_classes} classes: leave num_classes out (it defaults to '
                    'the dataset\'s class count)')
            if step.setdefault('ignore_index', dataset.ignore_index) != dataset.ignore_index:
                check.errors.append(
                    f'{key}[{i}]: ValidateSegLabels(ignore_index={step["ignore_index"]}) but '
                    f'the dataset has ignore_index={dataset.ignore_index}')
    if load_at is not None and not validated:
        pipeline.insert(load_at + 1, dict(type='ValidateSegLabels', num_classes=num_classes,
                                          ignore_index=dataset.ignore_index))
    if not image_rule(pipeline).applies_exif:  # the default (True) is mmcv's
        for step in pipeline:
            if type_name(step) == 'ValidateSegLabels' and isinstance(step, dict):
                step.setdefault('exif_applied', False)


def check_seg_datasets(cfg, splits):
    """Check the mmseg datasets of ``cfg``'s ``splits`` (keys of
    :data:`~mmseg_ext.checks.config_walk.SPLITS`).

    Fills in / adds ``ValidateSegLabels`` in their pipelines (in ``cfg``). Returns one
    :class:`DatasetCheck` per mmseg dataset; other datasets are left alone.
    """
    checks = []
    for key, dataset_cfg in split_datasets(cfg, splits):
        dataset = build_seg_dataset(dataset_cfg, cfg.get('default_scope'))
        if dataset is None:
            continue
        check = DatasetCheck(key=key, dataset=dataset, pipeline=dataset_cfg.get('pipeline') or [])
        _list_files(check, dataset_cfg)
        if 'model' in cfg:
            _check_model(check, cfg.model)
        _check_reduce_zero_label(check)
        _check_pipeline(check, dataset_cfg.get('pipeline') or [])
        checks.append(check)
    return checks
