"""The built-in synthetic data: determinism, on-disk formats and loading through upstream code."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmseg_ext.toy_data import images as toy_data

SIZE = (64, 64)
REPO = Path(__file__).resolve().parents[1]


def _generate(fmt, out, seed=0, size=SIZE):
    return toy_data.GENERATORS[fmt](out, num_train=3, num_val=2, size=size, seed=seed)


@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    return _generate('ade20k', tmp_path_factory.mktemp('ade'))


@pytest.fixture(scope='module')
def cityscapes(tmp_path_factory):
    return _generate('cityscapes', tmp_path_factory.mktemp('cityscapes'), size=(64, 96))


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    return _generate('coco-panoptic', tmp_path_factory.mktemp('coco'), size=(64, 80))


def _tree(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*'))
            if p.is_file()}


@pytest.mark.parametrize('fmt', ['ade20k', 'cityscapes', 'coco-panoptic'])
def test_same_seed_same_bytes_other_seed_differs(fmt, tmp_path):
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        _generate(fmt, tmp_path / name, seed=seed)
    first, second, other = (_tree(tmp_path / name) for name in 'abc')
    assert first.keys() == second.keys() == other.keys()
    assert first == second
    images = [k for k in first if k.endswith(('.jpg', '_leftImg8bit.png'))]
    assert len(images) == 5
    assert all(first[k] != other[k] for k in images)


def _segment_map(info, split):
    """ADE20K label maps of a split, paired with their images."""
    ann_dir = Path(info['splits'][split]['ann_dir'])
    img_dir = Path(info['splits'][split]['img_dir'])
    for ann in sorted(ann_dir.glob('*.png')):
        yield (np.asarray(Image.open(img_dir / ann.name.replace('.png', '.jpg'))),
               np.asarray(Image.open(ann)))


def test_ade20k_layout_and_classes(ade):
    from mmseg.datasets import ADE20KDataset

    names = ADE20KDataset.METAINFO['classes']
    for cls in toy_data.ADE20K_CLASSES:
        assert names[cls.label - 1] == cls.name
    root = Path(ade['data_root'])
    assert root.name == 'ADEChallengeData2016'
    assert sorted(p.name for p in (root / 'images' / 'validation').iterdir()) == [
        'ADE_val_00000001.jpg', 'ADE_val_00000002.jpg']
    assert len(list((root / 'annotations' / 'training').glob('ADE_train_*.png'))) == 3
    values = set()
    for img, ann in _segment_map(ade, 'train'):
        assert img.shape == (*SIZE, 3) and img.dtype == np.uint8
        assert ann.shape == SIZE and ann.dtype == np.uint8
        values |= set(np.unique(ann).tolist())
    allowed = {c.label for c in toy_data.ADE20K_CLASSES} | {0}
    assert values <= allowed and len(values - {0}) >= 5
    meta = json.loads(Path(ade['meta_file']).read_text())
    assert meta['classes'] == [c.name for c in toy_data.ADE20K_CLASSES]


def test_ade20k_loads_with_mmseg_pipeline(ade):
    from mmengine.registry import DefaultScope
    from mmseg.datasets import ADE20KDataset

    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations',
                                                     reduce_zero_label=True)]
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = ADE20KDataset(
            data_root=ade['data_root'], pipeline=pipeline,
            data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'))
        assert len(dataset) == 2
        train_ids = {c.label - 1 for c in toy_data.ADE20K_CLASSES}
        for i, (_, ann) in enumerate(_segment_map(ade, 'val')):
            sample = dataset[i]
            assert sample['img'].shape == (*SIZE, 3)
            seg = sample['gt_seg_map']
            assert set(np.unique(seg).tolist()) <= train_ids | {255}
            expected = np.where(ann == 0, 255, ann.astype(np.int64) - 1)
            np.testing.assert_array_equal(seg, expected)


def _cityscapes_stems(info, split):
    return sorted(p.name[:-len('_gtFine_polygons.json')]
                  for p in Path(info['splits'][split]['ann_dir']).rglob('*_polygons.json'))


def test_cityscapes_files_agree_with_cityscapesscripts(cityscapes, tmp_path):
    from cityscapesscripts.helpers.labels import id2label, name2label
    from cityscapesscripts.preparation.json2instanceImg import json2instanceImg
    from cityscapesscripts.preparation.json2labelImg import json2labelImg

    for cls in toy_data.CITYSCAPES_CLASSES:
        assert name2label[cls.name].id == cls.label
        assert name2label[cls.name].hasInstances == cls.isthing
    root = Path(cityscapes['data_root'])
    lut = np.full(256, 255, np.uint8)
    for label in id2label.values():
        if label.id >= 0:
            lut[label.id] = label.trainId if label.trainId >= 0 else 255
    things = 0
    for split in ('train', 'val'):
        stems = _cityscapes_stems(cityscapes, split)
        assert len(stems) == (3 if split == 'train' else 2)
        for stem in stems:
            city = stem.split('_')[0]
            assert stem.endswith('_000019')
            gt = root / 'gtFine' / split / city / f'{stem}_gtFine'
            img = np.asarray(Image.open(root / 'leftImg8bit' / split / city /
                                        f'{stem}_leftImg8bit.png'))
            assert img.shape == (64, 96, 3)
            poly = json.loads(Path(f'{gt}_polygons.json').read_text())
            assert (poly['imgHeight'], poly['imgWidth']) == (64, 96)
            label_ids = np.asarray(Image.open(f'{gt}_labelIds.png'))
            instance_ids = np.asarray(Image.open(f'{gt}_instanceIds.png'))
            train_ids = np.asarray(Image.open(f'{gt}_labelTrainIds.png'))
            assert (lut[label_ids] == train_ids).mean() > 0.99
            json2labelImg(f'{gt}_polygons.json', str(tmp_path / 'ids.png'), 'ids')
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'ids.png')), label_ids)
            json2instanceImg(f'{gt}_polygons.json', str(tmp_path / 'inst.png'), 'ids')
            np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'inst.png')),
                                          instance_ids)
            thing_ids = instance_ids[instance_ids >= 1000]
            np.testing.assert_array_equal(thing_ids // 1000, label_ids[instance_ids >= 1000])
            stuff = instance_ids < 1000
            np.testing.assert_array_equal(instance_ids[stuff], label_ids[stuff])
            things += len(np.unique(thing_ids))
    assert things > 0


def test_cityscapes_loads_with_mmseg_and_evaluates(cityscapes, tmp_path):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as cs_eval
    from cityscapesscripts.helpers.labels import id2label
    from mmengine.registry import DefaultScope
    from mmseg.datasets import CityscapesDataset

    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]
    with DefaultScope.overwrite_default_scope('mmseg'):
        dataset = CityscapesDataset(
            data_root=cityscapes['data_root'], pipeline=pipeline,
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'))
        assert len(dataset) == 3
        seen = set()
        for sample in dataset:
            assert sample['img'].shape == (64, 96, 3)
            seen |= set(np.unique(sample['gt_seg_map']).tolist())
    assert seen <= set(range(19)) | {255} and len(seen - {255}) >= 4

    # The labelIds are usable as ground truth by the official pixel-level evaluation.
    gts = sorted(str(p) for p in Path(cityscapes['data_root'], 'gtFine', 'val').rglob(
        '*_gtFine_labelIds.png'))
    args = copy.copy(cs_eval.args)
    args.evalInstLevelScore = False  # uses np.in1d, removed in numpy 2.4
    args.JSONOutput, args.quiet = False, True
    result = cs_eval.evaluateImgLists(gts, gts, args)
    ids = np.unique(np.concatenate([np.asarray(Image.open(p)).ravel() for p in gts]))
    present = {id2label[i].name for i in ids.tolist() if not id2label[i].ignoreInEval}
    assert len(present) >= 4
    assert all(result['classScores'][name] == 1.0 for name in present)


def _rgb2id(rgb):
    from panopticapi.utils import rgb2id
    return rgb2id(rgb.astype(np.int64))


def _panoptic(info, split):
    return json.loads(Path(info['splits'][split]['panoptic_json']).read_text())


def test_coco_panoptic_png_matches_segments_info(coco):
    from mmdet.datasets import CocoPanopticDataset

    pan = _panoptic(coco, 'val')
    meta = CocoPanopticDataset.METAINFO
    cats = {c['id']: c for c in pan['categories']}
    assert [c['id'] for c in pan['categories']] == sorted(cats)
    for cat in pan['categories']:
        assert cat['name'] in meta['classes']
        assert (cat['name'] in meta['thing_classes']) == bool(cat['isthing'])
    assert {(c['id'], c['name']) for c in pan['categories']} >= {
        (1, 'person'), (3, 'car'), (149, 'road'), (187, 'sky-other-merged'),
        (193, 'grass-merged'), (199, 'wall-other-merged')}
    assert [im['id'] for im in pan['images']] == [a['image_id'] for a in pan['annotations']]
    seg_dir = Path(coco['splits']['val']['seg_dir'])
    for ann in pan['annotations']:
        ids = _rgb2id(np.asarray(Image.open(seg_dir / ann['file_name'])))
        assert ids.shape == (64, 80)
        listed = {s['id'] for s in ann['segments_info']}
        assert set(np.unique(ids).tolist()) - {0} == listed
        for seg in ann['segments_info']:
            mask = ids == seg['id']
            ys, xs = np.nonzero(mask)
            assert seg['area'] == mask.sum() and seg['iscrowd'] == 0
            assert seg['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                   ys.max() - ys.min() + 1]
            assert seg['category_id'] in cats


def test_coco_instances_match_panoptic_things(coco):
    from pycocotools.coco import COCO
    from pycocotools.mask import decode

    for split in ('train', 'val'):
        pan = _panoptic(coco, split)
        inst = COCO(coco['splits'][split]['instances_json'])
        assert sorted(inst.getImgIds()) == sorted(im['id'] for im in pan['images'])
        thing_cats = {c['id'] for c in pan['categories'] if c['isthing']}
        assert set(inst.getCatIds()) == thing_cats
        seg_dir = Path(coco['splits'][split]['seg_dir'])
        for ann in pan['annotations']:
            ids = _rgb2id(np.asarray(Image.open(seg_dir / ann['file_name'])))
            things = [s for s in ann['segments_info'] if s['category_id'] in thing_cats]
            objs = inst.loadAnns(inst.getAnnIds(imgIds=ann['image_id']))
            assert len(objs) == len(things)
            for seg, obj in zip(things, objs):
                assert (obj['category_id'], obj['bbox'], obj['area'], obj['iscrowd']) == (
                    seg['category_id'], seg['bbox'], seg['area'], 0)
                np.testing.assert_array_equal(decode(obj['segmentation']), ids == seg['id'])


def test_coco_panoptic_loads_with_mmdet_and_scores_perfect_pq(coco):
    import torch
    from mmdet.datasets import CocoPanopticDataset
    from mmdet.evaluation import CocoPanopticMetric
    from mmdet.evaluation.functional import INSTANCE_OFFSET
    from mmengine.registry import DefaultScope

    meta = json.loads(Path(coco['meta_file']).read_text())
    metainfo = {k: meta[k] for k in ('classes', 'thing_classes', 'stuff_classes')}
    assert meta['classes'] == meta['thing_classes'] + meta['stuff_classes']
    root = Path(coco['data_root'])
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True,
                     with_seg=True)]
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = CocoPanopticDataset(
            data_root=str(root), ann_file='annotations/panoptic_val2017.json',
            data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
            metainfo=metainfo, pipeline=pipeline, test_mode=True)
        metric = CocoPanopticMetric(ann_file=str(root / 'annotations/panoptic_val2017.json'),
                                    seg_prefix=str(root / 'annotations/panoptic_val2017'),
                                    nproc=1)
        metric.dataset_meta = dataset.metainfo
        assert list(dataset.metainfo['classes']) == meta['classes']
        pan = _panoptic(coco, 'val')
        name_of = {c['id']: c['name'] for c in pan['categories']}
        thing_cats = {c['id'] for c in pan['categories'] if c['isthing']}
        num_things = len(meta['thing_classes'])
        assert len(dataset) == 2
        for i, ann in enumerate(pan['annotations']):
            sample = dataset[i]
            ids = _rgb2id(np.asarray(Image.open(root / 'annotations/panoptic_val2017' /
                                                ann['file_name'])))
            things = [s for s in ann['segments_info'] if s['category_id'] in thing_cats]
            boxes = []  # from the PNG masks, not from the json
            for s in things:
                ys, xs = np.nonzero(ids == s['id'])
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            boxes = np.array(boxes, np.float32)
            np.testing.assert_allclose(sample['gt_bboxes'].numpy(), boxes)
            labels = [meta['classes'].index(name_of[s['category_id']]) for s in things]
            assert sample['gt_bboxes_labels'].tolist() == labels
            assert all(lb < num_things for lb in labels)
            masks = sample['gt_masks'].masks
            np.testing.assert_array_equal(masks, np.stack([ids == s['id'] for s in things]))
            seg = sample['gt_seg_map']
            expected = np.full(ids.shape, 255)
            pred = np.full(ids.shape, len(meta['classes']), np.int64)
            for k, s in enumerate(ann['segments_info']):
                label = meta['classes'].index(name_of[s['category_id']])
                expected[ids == s['id']] = label
                pred[ids == s['id']] = label + (k + 1) * INSTANCE_OFFSET * (label < num_things)
            np.testing.assert_array_equal(seg, expected)
            metric.process({}, [dict(img_id=ann['image_id'], img_path=sample['img_path'],
                                     ori_shape=ids.shape,
                                     pred_panoptic_seg=dict(sem_seg=torch.from_numpy(pred)[None]))])
        result = metric.evaluate(len(dataset))
    assert result['coco_panoptic/PQ'] == pytest.approx(100.0)


def test_coco_instances_load_with_mmdet(coco):
    from mmdet.datasets import CocoDataset
    from mmengine.registry import DefaultScope

    meta = json.loads(Path(coco['meta_file']).read_text())
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = CocoDataset(data_root=coco['data_root'],
                              ann_file='annotations/instances_train2017.json',
                              data_prefix=dict(img='train2017/'),
                              metainfo=dict(classes=meta['thing_classes']), pipeline=pipeline)
        sample = dataset[0]
    assert len(sample['gt_masks']) == len(sample['gt_bboxes']) > 0
    assert sample['gt_masks'].masks.shape[1:] == (64, 80)


def test_every_class_is_textured_and_colour_alone_is_not_enough(ade):
    stds = []
    for img, ann in _segment_map(ade, 'train'):
        for value in np.unique(ann):
            mask = ann == value
            if mask.sum() >= 40:
                stds.append(img[mask].std(0).mean())
    assert min(stds) > 6.0

    # Pixel colour alone does not give the class: a colour lookup table (8 levels per channel),
    # fit and scored on the same pixels, stays well below what flat colours allow (0.96 here).
    pairs = list(_segment_map(ade, 'train'))
    rgb = np.concatenate([img.reshape(-1, 3) for img, _ in pairs]) // 32
    key = (rgb[:, 0] * 8 + rgb[:, 1]) * 8 + rgb[:, 2]
    label = np.concatenate([ann.ravel() for _, ann in pairs])
    votes = np.zeros((512, 256), np.int64)
    np.add.at(votes, (key, label), 1)
    assert (votes.argmax(1)[key] == label).mean() < 0.93


def test_cli_writes_the_same_files_as_the_function(tmp_path):
    cmd = [sys.executable, str(REPO / 'tools/misc/make_toy_data.py'), '--format',
           'coco-panoptic', '--out', str(tmp_path / 'cli'), '--num-train', '2', '--num-val', '1',
           '--size', '48', '64', '--seed', '5']
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert 'panoptic_val2017.json' in proc.stdout and 'toy_meta.json' in proc.stdout
    toy_data.make_coco_panoptic(tmp_path / 'fn', num_train=2, num_val=1, size=(48, 64), seed=5)
    cli, fn = _tree(tmp_path / 'cli'), _tree(tmp_path / 'fn')
    assert cli == fn and len(cli) == 2 + 1 + 2 + 1 + 4 + 1


def test_cli_choices_are_the_generators():
    """make_toy_data.py names its formats and default classes itself (--help imports nothing
    heavy): they must be the package's."""
    proc = subprocess.run([sys.executable, str(REPO / 'tools/misc/make_toy_data.py'), '--help'],
                          capture_output=True, text=True, check=True)
    help_text = ' '.join(proc.stdout.split())
    assert '{' + ','.join(sorted(toy_data.GENERATORS)) + '}' in help_text
    assert f"(default: {' '.join(toy_data.CUSTOM_CLASSES)})" in help_text
