"""configs/segformer/mit-b0_custom-dataset.py used as docs/datasets.md says (copy, edit the top
block, train), and the checks that stop a config whose data, classes and model disagree: the
custom-data cases of issue 14, each replayed."""
import os.path as osp
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, run_tool

CUSTOM = osp.join(REPO, 'configs/segformer/mit-b0_custom-dataset.py')
ADE = osp.join(REPO, 'configs/segformer/mit-b0_ade20k.py')
SHORT_SCHEDULE = """
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=10),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=10, end={iters}),
]
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval={iters}, save_best=None))
"""


def custom_config(tmp_path, name='my-dataset', short_iters=None, **block):
    """Copy the custom config and edit its top block (docs/datasets.md, step 2); ``_base_``
    becomes absolute since the copy is not next to the original. With ``short_iters``, a child
    config shortens the 160k schedule (what --cfg-options would do)."""
    text = open(CUSTOM).read().replace("'../_base_/", f"'{REPO}/configs/_base_/")
    for key, value in block.items():
        text, n = re.subn(rf'^{key} = .*?(?=\n[a-z#])', f'{key} = {value}', text, count=1,
                          flags=re.M | re.S)
        assert n == 1, key
    path = tmp_path / f'{name}.py'
    path.write_text(text)
    if short_iters is None:
        return str(path)
    child = tmp_path / f'{name}_short.py'
    child.write_text(f'_base_ = {str(path)!r}\n' + SHORT_SCHEDULE.format(iters=short_iters))
    return str(child)


def make_data(root, classes, num_train=4, num_val=2, size=(32, 32)):
    from mmseg_ext.toy_data.images import make_custom
    return make_custom(str(root), classes=classes, num_train=num_train, num_val=num_val,
                       size=size, seed=0)['data_root']


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    """background / sky / grass in the custom layout, 4 train + 2 val images of 32x32."""
    return make_data(tmp_path_factory.mktemp('custom'), ('background', 'sky', 'grass'))


def load(path, **options):
    import mmseg_ext  # noqa: F401
    from mmseg_ext.apis import load_config
    return load_config(path, options or None)


def prepare(cfg, mode='train'):
    from mmseg_ext.apis import prepare_config
    prepare_config(cfg, mode)
    return cfg


def build_dataset(dataset_cfg):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(dataset_cfg)


@pytest.mark.parametrize('classes,threshold', [
    (('background', 'sky', 'grass'), 70),  # a background class, ignored clutter (255)
    (('background', 'grass'), 70),  # binary
])
def test_documented_config_learns(tmp_path, classes, threshold):
    """Copy + edit the block, ImageNet weights from a local file (the offline route),
    tools/train.py: validation mIoU clears the threshold (measured: 87.4 and 86.1)."""
    import torch

    from mmseg_ext.models.backbones.mit import MiT
    root = make_data(tmp_path / 'data', classes, num_train=16, num_val=4, size=(64, 64))
    weights = tmp_path / 'mit_b0_local.pth'
    torch.manual_seed(0)
    torch.save({'state_dict': MiT(arch='b0').state_dict()}, weights)
    palette = [[0, 0, 0], [70, 130, 180], [107, 142, 35]][:len(classes)]
    cfg = custom_config(tmp_path, short_iters=80, data_root=repr(root), classes=repr(classes),
                        palette=repr(palette), crop_size='(64, 64)', img_scale='(256, 64)',
                        pretrained=repr(str(weights)))
    proc = run_tool('tools/train.py', cfg, '--work-dir', str(tmp_path / 'work'))
    log = proc.stdout + proc.stderr
    assert f'MiT: loaded {weights}' in log
    miou = float(re.findall(r'Iter\(val\).*?mIoU: ([\d.]+)', log)[-1])
    print(f'{classes}: mIoU {miou}')
    assert miou >= threshold, log[-3000:]


def test_derived_values_follow_the_block(tmp_path, small_data):
    cfg = prepare(load(custom_config(tmp_path, data_root=repr(small_data),
                                     classes="('background', 'sky', 'grass')")))
    assert cfg.model.decode_head.num_classes == 3
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        validator = [t for t in loader.dataset.pipeline if t['type'] == 'ValidateSegLabels']
        assert validator == [dict(type='ValidateSegLabels', num_classes=3, ignore_index=255)]


def test_without_background_class(tmp_path):
    """0 = unlabelled: classes without 'background', reduce_zero_label=True."""
    root = make_data(tmp_path / 'data', ('sky', 'grass'))
    cfg = prepare(load(custom_config(tmp_path, data_root=repr(root), classes="('sky', 'grass')",
                                     palette='[[70, 130, 180], [107, 142, 35]]',
                                     reduce_zero_label='True')))
    sample = build_dataset(cfg.val_dataloader.dataset)[0]
    assert set(np.unique(sample['data_samples'].gt_sem_seg.data.numpy())) <= {0, 1, 255}


# ---- the config of the old docs/datasets.md and the fixes users tried (issue 14) ----

OLD_DOC_CONFIG = """
_base_ = {ade!r}
data_root = {root!r}
metainfo = dict(classes=('background', 'sky', 'grass'),
                palette=[[0, 0, 0], [128, 64, 128], [0, 0, 142]])
dataset = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo,
               img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label={rzl})
train_dataloader = dict(dataset=dict(
    dataset, data_prefix=dict(img_path='img/train', seg_map_path='ann/train'),
    pipeline={{{{_base_.train_pipeline}}}}))
val_dataloader = dict(dataset=dict(
    dataset, data_prefix=dict(img_path='img/val', seg_map_path='ann/val'),
    pipeline={{{{_base_.test_pipeline}}}}))
test_dataloader = val_dataloader
"""


@pytest.mark.parametrize('case,rzl,num_classes,expected', [
    # as written: inherited LoadAnnotations(reduce_zero_label=True) and ValidateSegLabels(150)
    ('as documented', False, 3, ['LoadAnnotations(reduce_zero_label=True) but the dataset has '
                                 'reduce_zero_label=False', 'ValidateSegLabels(num_classes=150)']),
    # the tempting fix: the dataset's reduce_zero_label=True with a background class
    ('reduce_zero_label', True, 3, ["class 0 ('background') would be learned from label value 1"]),
    # decode_head.num_classes forgotten: a 150-class head on 3-class data
    ('num_classes forgotten', False, None, ['model.decode_head.num_classes = 150 but '
                                           'train_dataloader.dataset has 3 classes']),
])
def test_old_documented_config_fails_clearly(tmp_path, small_data, case, rzl, num_classes,
                                             expected):
    text = OLD_DOC_CONFIG.format(ade=ADE, root=small_data, rzl=rzl)
    if num_classes:
        text += f'model = dict(decode_head=dict(num_classes={num_classes}))\n'
    path = tmp_path / 'old.py'
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        prepare(load(str(path)))
    for message in expected:
        assert message in str(error.value), case


def _index_of(dataset, mask):
    return [dataset.get_data_info(i)['seg_map_path'] for i in range(len(dataset))].index(str(mask))


def _broken_copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize('split', ['train', 'val'])
def test_label_out_of_range_is_named_in_train_and_val(tmp_path, small_data, split):
    """Value 7 in a 3-class set: an error naming the file, in training and in validation
    (which would otherwise miscount it silently)."""
    root = _broken_copy(small_data, tmp_path / 'data')
    mask = sorted((root / 'ann' / split).glob('*.png'))[0]
    seg = np.array(Image.open(mask))
    seg[:4, :4] = 7
    Image.fromarray(seg).save(mask)
    cfg = prepare(load(custom_config(tmp_path, data_root=repr(str(root)),
                                     classes="('background', 'sky', 'grass')")))
    dataset = build_dataset(cfg[f'{split}_dataloader'].dataset)
    index = _index_of(dataset, mask)
    with pytest.raises(ValueError, match=re.escape(str(mask)) + '.*label values \\[7\\]'):
        dataset[index]


@pytest.mark.parametrize('split', ['train', 'val'])
def test_mask_of_another_size_names_both_files(tmp_path, small_data, split):
    root = _broken_copy(small_data, tmp_path / 'data')
    mask = sorted((root / 'ann' / split).glob('*.png'))[0]
    Image.fromarray(np.array(Image.open(mask))[:20]).save(mask)
    image = str(mask).replace('/ann/', '/img/').replace('.png', '.jpg')
    cfg = prepare(load(custom_config(tmp_path, data_root=repr(str(root)),
                                     classes="('background', 'sky', 'grass')")))
    dataset = build_dataset(cfg[f'{split}_dataloader'].dataset)
    index = _index_of(dataset, mask)
    with pytest.raises(ValueError) as error:
        dataset[index]
    assert f'{mask} is 20x32' in str(error.value) and f'{image} is 32x32' in str(error.value)


def test_wrong_img_suffix_is_named(tmp_path, small_data):
    block = dict(data_root=repr(small_data), classes="('background', 'sky', 'grass')")
    with pytest.raises(ValueError) as error:
        prepare(load(custom_config(tmp_path, img_suffix="'.png'", **block)))
    assert "no images ending in img_suffix='.png'" in str(error.value)
    assert "4 '.jpg' files: set train_dataloader.dataset.img_suffix='.jpg'" in str(error.value)


def test_images_skipped_for_their_suffix_are_listed(tmp_path, small_data, monkeypatch):
    import mmseg_ext.apis.runner as launch
    root = _broken_copy(small_data, tmp_path / 'data')
    Image.new('RGB', (32, 32)).save(root / 'img' / 'train' / 'extra.png')
    messages = []
    monkeypatch.setattr(launch, 'print_log', lambda msg, **kwargs: messages.append(msg))
    prepare(load(custom_config(tmp_path, data_root=repr(str(root)),
                               classes="('background', 'sky', 'grass')")))
    assert any("do not end in img_suffix='.jpg' and are skipped: extra.png" in m
               for m in messages)


def test_test_mode_checks_only_the_test_split(tmp_path, small_data):
    cfg_path = custom_config(tmp_path, data_root=repr(small_data),
                             classes="('background', 'sky', 'grass')")
    missing = str(tmp_path / 'no_train_data')
    prepare(load(cfg_path, **{'train_dataloader.dataset.data_root': missing}), mode='test')
    with pytest.raises(FileNotFoundError, match='train_dataloader.dataset.data_root'):
        prepare(load(cfg_path, **{'train_dataloader.dataset.data_root': missing}))


@pytest.mark.parametrize('extra,expected', [
    ("train_cfgs = dict(max_iters=10)\n", "'train_cfgs' is not a key the Runner reads"),
    ("lr_config = dict(policy='poly')\n", "'lr_config' is an OpenMMLab 1.x key"),
])
def test_misspelled_and_outdated_keys_are_errors(tmp_path, small_data, extra, expected):
    path = custom_config(tmp_path, data_root=repr(small_data),
                         classes="('background', 'sky', 'grass')")
    with open(path, 'a') as f:
        f.write(extra)
    with pytest.raises(KeyError, match=expected):
        prepare(load(path))


def test_old_doc_paths_are_gone():
    """docs/datasets.md points at the shipped config and says how to get the weights offline."""
    doc = open(osp.join(REPO, 'docs/datasets.md')).read()
    assert 'configs/segformer/mit-b0_custom-dataset.py' in doc and 'Offline' in doc
    assert "_base_ = './mit-b0_ade20k.py'" not in doc
