"""Early, named errors for ImageNet-layout classification data (mmpretrain ``ImageNet`` /
``CustomDataset`` configs), instead of a FileNotFoundError from a data-loader worker mid-epoch.

The image folder must exist, and in annotation-file mode (``meta/train.txt`` lines
``n01440764/n01440764_10026.JPEG 0``) so must every class folder the file names. (In folder mode,
without an annotation file, mmpretrain itself checks the number of class folders.)
"""
import os.path as osp

from .config_walk import split_datasets


def _paths(dataset):
    """(image folder, annotation file or None) as mmpretrain's ImageNet resolves them."""
    root = dataset.get('data_root', '')
    split = dataset.get('split', '')
    prefix = dataset.get('data_prefix', '') or split
    if isinstance(prefix, dict):
        prefix = prefix.get('img_path', '')
    ann_file = dataset.get('ann_file', '')
    if not ann_file and split and osp.isfile(osp.join(root, 'meta', f'{split}.txt')):
        ann_file = osp.join('meta', f'{split}.txt')
    ann = osp.join(root, ann_file) if ann_file else None
    return osp.join(root, prefix), ann


def _class_folders(ann_file):
    with open(ann_file) as f:
        names = (line.split(maxsplit=1)[0] for line in f if line.strip())
        return sorted({name.rsplit('/', 1)[0] for name in names if '/' in name})


def check_classification_data(cfg, splits):
    """Raise ``FileNotFoundError`` naming the config key, the folder and the fix; ``splits``:
    the splits to check (those the tool uses)."""
    for where, dataset in split_datasets(cfg, splits):
        _check_dataset(where, dataset)


def _check_dataset(where, dataset):
    img_dir, ann_file = _paths(dataset)
    if not osp.isdir(img_dir):
        raise FileNotFoundError(
            f'{where}: image folder {img_dir!r} does not exist. Put the images there '
            '(docs/datasets.md, "ImageNet"), set data_root / split / data_prefix, or '
            'generate the built-in data with tools/misc/make_toy_data.py --format imagenet.')
    if ann_file is not None:
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'{where}: annotation file {ann_file!r} does not exist')
        missing = [d for d in _class_folders(ann_file) if not osp.isdir(osp.join(img_dir, d))]
        if missing:
            raise FileNotFoundError(
                f'{where}: {len(missing)} class folder(s) listed in {ann_file} are missing '
                f'under {img_dir}: {", ".join(missing[:5])}' +
                (' ...' if len(missing) > 5 else '') +
                '. Copy them there, or remove their lines from the annotation file.')
