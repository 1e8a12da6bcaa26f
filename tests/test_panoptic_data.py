"""Panoptic SegFormer on users' data: the semantic + instance PNG converter, the Cityscapes
panoptic config (cityscapesscripts' createPanopticImgs) through tools/train.py and tools/test.py,
and tools/infer.py on panoptic configs; all on the built-in toy Cityscapes data."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip('mmcv.ops')
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from mmseg_ext.datasets.panoptic_conversion import convert_semantic_instance  # noqa: E402
from tests.conftest import REPO, run_tool  # noqa: E402
from tests.helpers.panoptic import shrink_panoptic_model  # noqa: E402

CONFIGS = Path(REPO) / 'configs/panoptic_segformer'
SUFFIXES = dict(img_suffix='_leftImg8bit.png', sem_suffix='_gtFine_labelTrainIds.png',
                inst_suffix='_instance.png')


def _cityscapes_classes():
    """The 19 Cityscapes train classes in trainId order with their thing flags, from
    cityscapesscripts' label table."""
    from cityscapesscripts.helpers.labels import labels
    train = sorted((lb for lb in labels if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)
    return [dict(name=lb.name, isthing=lb.hasInstances, color=list(lb.color)) for lb in train]


def _instance_pngs(root: Path, out: Path):
    """Generic instance-id PNGs from Cityscapes' instanceIds (label * 1000 + k on thing pixels,
    the label id elsewhere): k + 1 on thing instances, 0 elsewhere."""
    for path in root.glob('gtFine/*/*/*_gtFine_instanceIds.png'):
        ids = np.asarray(Image.open(path)).astype(np.int64)
        inst = np.where(ids >= 1000, ids % 1000 + 1, 0).astype(np.uint16)
        dst = out / path.relative_to(root / 'gtFine').parent / \
            path.name.replace('_gtFine_instanceIds.png', '_instance.png')
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(inst).save(dst)


@pytest.fixture(scope='module')
def converted(toy_cityscapes, tmp_path_factory):
    """The toy Cityscapes train / val labels through the generic converter."""
    out = tmp_path_factory.mktemp('converted')
    _instance_pngs(toy_cityscapes, out / 'instances')
    classes = out / 'classes.json'
    classes.write_text(json.dumps(_cityscapes_classes()))
    written = {split: convert_semantic_instance(
        toy_cityscapes / 'leftImg8bit' / split, toy_cityscapes / 'gtFine' / split,
        out / 'instances' / split, str(classes), out, split, **SUFFIXES)
        for split in ('train', 'val')}
    return out, written


def _toy_config(data_root: Path, written: dict, work_dir: Path) -> Config:
    """The R-18 toy config on the converted data, shrunk, 2 iterations."""
    cfg = shrink_panoptic_model(Config.fromfile(
        str(CONFIGS / 'panoptic-segformer_r18_toy-coco-panoptic.py')))
    meta = written['train']['metainfo']
    cfg.model.bbox_head.update(num_things_classes=len(meta['thing_classes']),
                               num_stuff_classes=len(meta['stuff_classes']))
    for split, loader in (('train', 'train_dataloader'), ('val', 'val_dataloader')):
        cfg[loader].batch_size = 2
        cfg[loader].dataset.update(
            data_root=str(data_root) + '/', metainfo=meta,
            ann_file=written[split]['panoptic'],
            data_prefix=dict(img=written[split]['img_dir'] + '/',
                             seg=written[split]['panoptic_dir'] + '/'))
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator[0].update(ann_file=written['val']['panoptic'],
                                seg_prefix=written['val']['panoptic_dir'] + '/')
    cfg.val_evaluator[1].update(ann_file=written['val']['instances'])
    cfg.test_evaluator = cfg.val_evaluator
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.update(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                             logger=dict(type='LoggerHook', interval=1))
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.fixture(scope='module')
def trained(converted, tmp_path_factory):
    """Two iterations of the toy config on the converted data, then its test metrics."""
    out, written = converted
    work = tmp_path_factory.mktemp('work')
    cfg = _toy_config(out, written, work)
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    config = work / 'config.py'
    cfg.dump(str(config))
    return config, work / 'iter_2.pth', metrics


def test_converter_output_loads_in_mmdet(converted, trained):
    out, written = converted
    panoptic = json.loads(Path(written['val']['panoptic']).read_text())
    names = [c['name'] for c in panoptic['categories']]
    # things first, in class-list order: mmdet's labels 0..7 are the things
    assert names[:8] == ['person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                         'bicycle'] and names[8] == 'road' and len(names) == 19
    assert written['val']['metainfo']['classes'] == tuple(names)
    # the PNG folder mirrors the images; every segment id is in its PNG
    for ann in panoptic['annotations']:
        png = np.asarray(Image.open(Path(written['val']['panoptic_dir']) / ann['file_name']))
        ids = png[..., 0] + 256 * png[..., 1].astype(np.int64)
        assert {s['id'] for s in ann['segments_info']} == set(np.unique(ids)) - {0}
    instances = json.loads(Path(written['val']['instances']).read_text())
    assert instances['annotations'] and {c['name'] for c in instances['categories']} <= \
        set(names[:8])
    _, _, metrics = trained
    for key in ('coco_panoptic/PQ', 'coco_panoptic/PQ_th', 'coco_panoptic/PQ_st',
                'coco/segm_mAP'):
        assert key in metrics


def _write_labels(tmp_path, sem, inst, img_size=None):
    for sub in ('img', 'sem', 'inst'):
        (tmp_path / sub).mkdir(exist_ok=True)
    h, w = img_size or sem.shape
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(tmp_path / 'img' / 'a.jpg')
    Image.fromarray(sem).save(tmp_path / 'sem' / 'a.png')
    Image.fromarray(inst).save(tmp_path / 'inst' / 'a.png')
    return [str(tmp_path / s) for s in ('img', 'sem', 'inst')]


@pytest.mark.parametrize('case, message', [
    ('stuff_instance', r'inst/a\.png: instance ids \[3\] lie on stuff classes \[.road.\]'),
    ('bad_label', r'sem/a\.png: label values \[7\] are outside the class list'),
    ('size', r'size mismatch: .*sem/a\.png is 4x6 but .*inst/a\.png is 4x5'),
    ('image_size', r'size mismatch: .*img/a\.jpg is 5x6 but .*sem/a\.png is 4x6'),
])
def test_converter_names_the_file_of_bad_labels(tmp_path, case, message):
    classes = [dict(name='road', isthing=False), dict(name='car', isthing=True)]
    sem = np.zeros((4, 6), np.uint8)
    sem[:, 3:] = 1
    inst = np.zeros((4, 6), np.uint16)
    inst[:, 3:] = 1
    img_size = None
    if case == 'stuff_instance':
        inst[0, 0] = 3
    elif case == 'bad_label':
        sem[0, 0] = 7
    elif case == 'size':
        inst = inst[:, :5].copy()
    else:
        img_size = (5, 6)
    dirs = _write_labels(tmp_path, sem, inst, img_size)
    with pytest.raises(ValueError, match=message):
        convert_semantic_instance(*dirs, classes, str(tmp_path / 'out'), 'train')


def test_infer_writes_panoptic_files_that_evaluate(converted, trained, tmp_path):
    from panopticapi.evaluation import pq_compute
    from pycocotools.coco import COCO

    out, written = converted
    config, ckpt, metrics = trained
    images = Path(written['val']['img_dir'])
    pred = tmp_path / 'pred'
    proc = run_tool('tools/infer.py', str(config), str(ckpt), str(images), '--out-dir',
                    str(pred), '--ann-file', written['val']['panoptic'])
    assert '2/2' in proc.stdout  # mmengine's progress bar
    names = sorted(p.name[:-len('_leftImg8bit.png')] for p in images.glob('*.png'))
    for sub, ext in (('overlays', 'png'), ('panoptic', 'png'), ('panoptic', 'json'),
                     ('instances', 'json')):
        assert sorted(p.name.split('_leftImg8bit')[0]
                      for p in (pred / sub).glob(f'*.{ext}')) == names
    overlay = np.asarray(Image.open(next((pred / 'overlays').glob('*.png'))))
    assert overlay.shape == (64, 128, 3)
    instances = json.loads(next((pred / 'instances').glob('*.json')).read_text())
    assert len(instances) == 10 and all('counts' in r['segmentation'] for r in instances)
    assert [r['score'] for r in instances] == sorted((r['score'] for r in instances),
                                                     reverse=True)
    # panopticapi evaluates the predictions against the converted ground truth
    result = pq_compute(written['val']['panoptic'], str(pred / 'panoptic.json'),
                        gt_folder=written['val']['panoptic_dir'],
                        pred_folder=str(pred / 'panoptic'))
    # ... and agrees with mmdet's CocoPanopticMetric on the same model and images
    assert result['All']['pq'] * 100 == pytest.approx(metrics['coco_panoptic/PQ'], abs=1e-6)
    gt = COCO(written['val']['instances'])
    assert len(gt.loadRes(str(pred / 'instances.json')).getAnnIds()) == 20


def test_infer_skips_a_bad_file_and_says_so(converted, trained, tmp_path):
    """A corrupt image in the folder is reported with its name and reason and skipped; the
    others are written; the summary counts them and the exit status is 1."""
    _, written = converted
    config, ckpt, _ = trained
    images = tmp_path / 'images'
    shutil.copytree(written['val']['img_dir'], images)
    (images / 'broken_leftImg8bit.png').write_bytes(b'not a png')
    pred = tmp_path / 'pred'
    proc = run_tool('tools/infer.py', str(config), str(ckpt), str(images), '--out-dir',
                    str(pred), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert f'skipped {images / "broken_leftImg8bit.png"}' in out
    assert 'wrote overlays and panoptic maps of 2 of 3 images' in out
    assert len(list((pred / 'overlays').glob('*.png'))) == 2
    assert len(json.loads((pred / 'panoptic.json').read_text())['annotations']) == 2


def test_cityscapes_panoptic_config_through_train_and_test(toy_cityscapes, tmp_path):
    """createPanopticImgs via tools/dataset_converters/cityscapes_panoptic.py, then the
    Cityscapes config (shrunk, small scales) through tools/train.py and tools/test.py."""
    root = tmp_path / 'cityscapes'
    shutil.copytree(toy_cityscapes, root)
    run_tool('tools/dataset_converters/cityscapes_panoptic.py', str(root))
    assert (root / 'gtFine' / 'cityscapes_panoptic_val.json').is_file()  # createPanopticImgs
    cfg = shrink_panoptic_model(Config.fromfile(
        str(CONFIGS / 'panoptic-segformer_r50_cityscapes-panoptic.py')))
    assert (cfg.model.bbox_head.num_things_classes, cfg.model.bbox_head.num_stuff_classes) == \
        (8, 11) and len(cfg.metainfo['classes']) == 19
    data_root = str(root / 'mmdet_panoptic') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = data_root
        cfg[loader].batch_size = 2
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline[3].scale, pipeline[4].crop_size = (128, 64), (48, 96)  # toy images are 64 x 128
    for loader in ('val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.pipeline[1].scale = (128, 64)
    for key in ('val_evaluator', 'test_evaluator'):
        cfg[key][0].update(ann_file=data_root + 'annotations/panoptic_val.json',
                           seg_prefix=data_root + 'annotations/panoptic_val/')
        cfg[key][1].ann_file = data_root + 'annotations/instances_val.json'
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.param_scheduler = []
    cfg.default_hooks.update(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                             logger=dict(type='LoggerHook', interval=1))
    cfg.log_processor = dict(by_epoch=False)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    config = tmp_path / 'cityscapes.py'
    cfg.dump(str(config))
    work = tmp_path / 'work'
    run_tool('tools/train.py', str(config), '--work-dir', str(work))
    proc = run_tool('tools/test.py', str(config), str(work / 'iter_2.pth'), '--work-dir',
                    str(work))
    log = proc.stdout + proc.stderr
    for key in ('coco_panoptic/PQ:', 'coco_panoptic/PQ_th:', 'coco_panoptic/PQ_st:',
                'coco/segm_mAP:'):
        assert key in log, key
