"""Corruption transform, robustness_eval tool (pairs, resume, table, plot, end to end)."""
import json
import os.path as osp

import numpy as np
import pytest

from mmseg_ext.datasets.transforms.corruption import (
    ALL_CORRUPTIONS,
    NOISE_CORRUPTIONS,
    PAPER_CORRUPTIONS,
    ImageCorruption,
    corrupt_image,
    corruption_family,
)
from mmseg_ext.robustness import compare_predictions
from mmseg_ext.robustness import corruption_eval as rob
from tools.analysis_tools import compare_predictions as compare_tool
from tools.analysis_tools import robustness_eval

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))




@pytest.fixture(scope='module')
def image():
    """A smooth BGR test image with edges (blur and noise both visibly change it)."""
    h, w = 40, 56
    y, x = np.mgrid[:h, :w]
    img = np.stack([x * 4, y * 5, ((x // 8 + y // 8) % 2) * 200 + 20], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_sets():
    assert len(PAPER_CORRUPTIONS) == 16 and len(set(PAPER_CORRUPTIONS)) == 16
    assert len(ALL_CORRUPTIONS) == 19
    assert {corruption_family(c) for c in ALL_CORRUPTIONS} == {'noise', 'blur', 'weather',
                                                               'digital'}


@pytest.mark.parametrize('name', ALL_CORRUPTIONS)
def test_corruption_changes_image_deterministically(image, name):
    a = corrupt_image(image, name, 3, seed=1)
    b = corrupt_image(image, name, 3, seed=1)
    assert a.shape == image.shape and a.dtype == np.uint8
    assert np.array_equal(a, b), 'same seed must give the same image'
    assert np.abs(a.astype(int) - image).mean() > 0.5, 'the corruption must change the image'
    if name in NOISE_CORRUPTIONS:
        assert not np.array_equal(a, corrupt_image(image, name, 3, seed=2))


def test_all_severities_run_and_keep_format(image):
    for name in ALL_CORRUPTIONS:
        for severity in range(1, 6):
            out = corrupt_image(image, name, severity, seed=0)
            assert out.shape == image.shape and out.dtype == np.uint8, (name, severity)


def test_severity_zero_is_identity(image):
    assert corrupt_image(image, 'fog', 0, seed=0) is image
    results = ImageCorruption('gaussian_noise', 0)(dict(img=image.copy(), img_path='a.png'))
    assert np.array_equal(results['img'], image)


@pytest.mark.parametrize('name', ['gaussian_blur', 'glass_blur'])
def test_skimage_keyword_fix(name):
    """Both failed on scikit-image >= 0.25 (multichannel removed); blur lowers the noise energy."""
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
    out = corrupt_image(noisy, name, 2, seed=0)
    assert np.diff(out.astype(float), axis=1).std() < 0.8 * np.diff(noisy.astype(float), 1).std()


def test_colour_order_bgr():
    """A flat image is a fixed point of contrast: BGR in must come back as BGR, not RGB."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = 200  # pure blue in BGR
    out = corrupt_image(img, 'contrast', 1, seed=0)
    assert out[..., 0].mean() > out[..., 2].mean()


@pytest.mark.parametrize('shape', [(5, 9, 3), (33, 200, 3), (200, 33, 3), (40, 56)])
def test_any_size_and_grey(shape):
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for name in ('frost', 'fog', 'pixelate', 'zoom_blur', 'snow', 'spatter'):
        assert corrupt_image(img, name, 5, seed=0).shape == img.shape


def test_transform_seeds_by_path_and_keeps_global_rng(image):
    t = ImageCorruption('shot_noise', 4, seed=7)
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    a = t(dict(img=image.copy(), img_path='x/a.png'))['img']
    assert np.random.rand() == expected_next, 'the global RNG must be restored'
    b = t(dict(img=image.copy(), img_path='x/a.png'))['img']
    c = t(dict(img=image.copy(), img_path='x/b.png'))['img']
    d = ImageCorruption('shot_noise', 4, seed=8)(dict(img=image.copy(), img_path='x/a.png'))['img']
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_registered_for_mmseg_and_mmdet():
    from mmdet.registry import TRANSFORMS as DET
    from mmseg.registry import TRANSFORMS as SEG
    for registry in (SEG, DET):
        t = registry.build(dict(type='ImageCorruption', corruption='fog', severity=2))
        assert isinstance(t, ImageCorruption)


def test_pipeline_insertion():
    loader = dict(dataset=dict(type='ConcatDataset', datasets=[
        dict(pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]),
        dict(pipeline=[dict(type='mmdet.LoadImageFromFile'), dict(type='Resize')]),
    ]))
    out = rob.corrupted_dataloader_cfg(loader, 'snow', 2, 5)
    for sub in out['dataset']['datasets']:
        assert sub['pipeline'][1] == dict(type='ImageCorruption', corruption='snow', severity=2,
                                          seed=5)
        assert len(sub['pipeline']) == 3
    assert len(loader['dataset']['datasets'][0]['pipeline']) == 2, 'the input is not modified'
    assert rob.corrupted_dataloader_cfg(loader, 'clean', 0, 5) == loader


def test_panoptic_config_and_pq_key():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'panoptic_segformer', 'panoptic-segformer_r18_toy-coco-panoptic.py'))
    assert rob.SCOPE_METRIC[cfg.default_scope] == 'PQ'
    loader = rob.corrupted_dataloader_cfg(cfg.test_dataloader, 'frost', 4, 0)
    assert loader['dataset']['pipeline'][1]['type'] == 'ImageCorruption'
    metrics = {'coco_panoptic/PQ_th': 3.0, 'coco_panoptic/PQ': 2.0, 'coco/bbox_mAP': 0.1}
    assert rob.pick_metric(metrics, 'PQ') == 2.0
    assert rob.pick_metric({'aAcc': 1.0, 'mIoU': 7.0}, 'mIoU') == 7.0


def test_pairs_and_sets():
    names = rob.resolve_corruptions(['noise', 'fog', 'gaussian_noise'])
    assert names == list(NOISE_CORRUPTIONS) + ['fog']
    assert rob.resolve_corruptions(['paper']) == list(PAPER_CORRUPTIONS)
    assert len(rob.resolve_corruptions(['imagenet-c'])) == 15
    pairs = rob.evaluation_pairs(['fog', 'snow'], [0, 1, 3])
    assert pairs == [('clean', 0), ('fog', 1), ('fog', 3), ('snow', 1), ('snow', 3)]
    with pytest.raises(ValueError):
        rob.resolve_corruptions(['rain'])


def _fake_metrics(corruption, severity):
    return {'aAcc': 90.0, 'mIoU': 50.0 - 5 * severity - len(corruption) * 0.1}


def test_resume_skips_finished_pairs(tmp_path):
    path = str(tmp_path / 'results.json')
    header = dict(config='c.py', checkpoint='k.pth', seed=0, scope='mmseg')
    pairs = rob.evaluation_pairs(['fog', 'snow'], [0, 1, 2])
    done = {rob.pair_key(c, s): _fake_metrics(c, s) for c, s in pairs[:3]}
    rob.save_json(path, dict(header, results=done))
    calls = []

    def evaluate(c, s):
        calls.append((c, s))
        return _fake_metrics(c, s)

    data = rob.run_pairs(pairs, evaluate, path, rob.load_results(path, header))
    assert calls == pairs[3:]
    with open(path) as f:
        assert set(json.load(f)['results']) == {rob.pair_key(c, s) for c, s in pairs}
    calls.clear()
    rob.run_pairs(pairs, evaluate, path, rob.load_results(path, header))
    assert calls == []
    with pytest.raises(ValueError):
        rob.load_results(path, dict(header, seed=1))
    with pytest.raises(ValueError):
        rob.load_results(path, dict(header, checkpoint='other.pth'))
    assert rob.load_results(path, dict(header, config='copy.py'))['results']
    assert len(data['results']) == len(pairs)


def test_table_has_every_row(tmp_path):
    corruptions = ['gaussian_noise', 'glass_blur', 'fog', 'contrast']
    pairs = rob.evaluation_pairs(corruptions, range(6))
    data = dict(results={rob.pair_key(c, s): _fake_metrics(c, s) for c, s in pairs[:-1]})
    table = rob.build_table(data, corruptions, range(6), 'mIoU')
    rob.write_table(table, str(tmp_path))
    rob.plot_table(table, str(tmp_path / 'plot.png'))
    with open(tmp_path / 'table.csv') as f:
        rows = [line.split(',') for line in f.read().splitlines()]
    assert [r[0] for r in rows[1:]] == ['clean', *corruptions, 'mean']
    assert rows[0][2:7] == [f'severity {s}' for s in range(1, 6)]
    clean = _fake_metrics('clean', 0)['mIoU']
    fog = [_fake_metrics('fog', s)['mIoU'] for s in range(1, 6)]
    assert float(rows[1][7]) == pytest.approx(clean, abs=0.01)
    assert float(rows[4][7]) == pytest.approx(np.mean(fog), abs=0.01)
    assert float(rows[4][8]) == pytest.approx(100 * (clean - np.mean(fog)) / clean, abs=0.01)
    assert rows[5][6] == '', 'the missing pair stays empty'
    md_rows = [r for r in (tmp_path / 'table.md').read_text().splitlines() if r.startswith('| ')]
    assert len(md_rows) == 1 + 1 + len(corruptions) + 1  # header, clean, corruptions, mean
    assert (tmp_path / 'plot.png').stat().st_size > 1000


# ---- end to end on a tiny mmseg model ----

TINY_CFG = """
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[123.7, 116.3, 103.5],
                           std=[58.4, 57.1, 57.4], bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
    backbone=dict(type='MixVisionTransformer', in_channels=3, embed_dims=8, num_stages=4,
                  num_layers=[1, 1, 1, 1], num_heads=[1, 2, 4, 8], patch_sizes=[7, 3, 3, 3],
                  sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=2),
    decode_head=dict(type='SegformerHead', in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3],
                     channels=16, dropout_ratio=0.0, num_classes=3, norm_cfg=norm_cfg,
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
test_dataloader = dict(
    batch_size=1, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BaseSegDataset', data_root='{root}',
                 metainfo=dict(classes=('a', 'b', 'c'), palette=[[255, 0, 0], [0, 255, 0],
                                                                 [0, 0, 255]]),
                 img_suffix='.png', seg_map_suffix='.png',
                 data_prefix=dict(img_path='img', seg_map_path='ann'), pipeline=test_pipeline))
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_cfg = dict(type='TestLoop')
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
log_level = 'WARNING'
"""


@pytest.fixture
def one_thread():
    """Tiny convolutions are far faster single-threaded on a busy 2-core machine."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    import cv2
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    root = tmp_path_factory.mktemp('tiny')
    rng = np.random.default_rng(0)
    for sub in ('img', 'ann'):
        (root / sub).mkdir()
    for i in range(3):
        label = np.zeros((48, 64), np.uint8)
        label[:, 20:] = 1
        label[30:, 40:] = 2
        colours = np.array([[40, 40, 200], [40, 200, 40], [200, 40, 40]], np.uint8)
        img = colours[label] + rng.integers(0, 20, (48, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / 'img' / f'{i}.png'), img)
        cv2.imwrite(str(root / 'ann' / f'{i}.png'), label)
    cfg_path = root / 'tiny.py'
    cfg_path.write_text(TINY_CFG.replace('{root}', str(root)))
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(cfg_path)).model)
    ckpt = root / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(ckpt))
    return str(cfg_path), str(ckpt), root


def test_end_to_end_and_resume(tiny_model, tmp_path, monkeypatch, one_thread):
    cfg, ckpt, _ = tiny_model
    work = str(tmp_path / 'work')
    argv = [cfg, ckpt, '--corruptions', 'gaussian_noise', 'glass_blur', '--severities', '0', '1',
            '5', '--work-dir', work]
    robustness_eval.main(argv)
    out = osp.join(work, 'robustness')
    with open(osp.join(out, 'results.json')) as f:
        results = json.load(f)['results']
    assert set(results) == {'clean/0', 'gaussian_noise/1', 'gaussian_noise/5', 'glass_blur/1',
                            'glass_blur/5'}
    assert all(0 <= r['mIoU'] <= 100 for r in results.values())
    for name in ('table.csv', 'table.md', 'plot.png'):
        assert osp.exists(osp.join(out, name))
    # a second run with one more severity evaluates only the new pairs
    calls = []
    real = rob.make_evaluator

    def counting(runner, cfg_, seed):
        evaluate = real(runner, cfg_, seed)

        def wrapped(c, s):
            calls.append((c, s))
            return evaluate(c, s)
        return wrapped

    monkeypatch.setattr(rob, 'make_evaluator', counting)
    robustness_eval.main(argv[:-3] + ['0', '1', '3', '5', '--work-dir', work,
                                      '--cfg-options', 'model.test_cfg.mode=slide',
                                      'model.test_cfg.crop_size=[32,32]',
                                      'model.test_cfg.stride=[24,24]'])
    assert calls == [('gaussian_noise', 3), ('glass_blur', 3)]
    with open(osp.join(out, 'table.csv')) as f:
        assert len(f.read().splitlines()) == 1 + 1 + 2 + 1


def test_compare_predictions(tiny_model, tmp_path, one_thread):
    cfg, ckpt, root = tiny_model
    tool = compare_predictions
    out = tmp_path / 'cmp'
    compare_tool.main(['--models', cfg, ckpt, cfg, ckpt, '--names', 'A', 'B', '--images',
                       str(root / 'img'), '--max-images', '2', '--out-dir', str(out),
                       '--corruption', 'fog', '--severity', '2'])
    assert sorted(p.name for p in out.iterdir()) == ['0.png', '1.png', 'contact_sheet.png']
    label = np.array([[0, 1], [2, 255]])
    rgb = tool.colourise(label, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert rgb[0, 1].tolist() == [4, 5, 6] and rgb[1, 1].tolist() == [0, 0, 0]
    gt = tool.dataset_ground_truth(cfg)
    assert len(gt) == 3 and gt[str(root / 'img' / '0.png')]().max() == 2
