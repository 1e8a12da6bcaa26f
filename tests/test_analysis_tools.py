"""get_flops.py (the paper's FLOPs), benchmark.py and infer.py end to end on CPU."""
import glob
import os
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.conftest import REPO, run_tool

B0 = 'configs/segformer/mit-b0_ade20k.py'


def test_get_flops_matches_paper_b0_512():
    """The paper's 8.4 G counts the decoder as written, whose fuse conv over the 4 x 256
    concatenated channels at 128 x 128 is 4 * 256 * 256 * 128^2 = 4.295 G on its own.
    AllMLPHead computes the same function folded: it forms the per-level (256 x C_i) maps,
    256 * 256 * (32 + 64 + 160 + 256) = 0.034 G, instead (docs/benchmarks.md)."""
    proc = run_tool('tools/analysis_tools/get_flops.py', B0, '--shape', '512', '512')
    flops = float(re.search(r'Flops: ([\d.]+) G', proc.stdout)[1])
    params = float(re.search(r'Params: ([\d.]+) M', proc.stdout)[1])
    folded = 8.4 - 4.295 + 0.034
    assert abs(flops - folded) / folded < 0.03
    assert round(params, 1) == 3.8  # paper: 3.8 M
    as_paper = float(re.search(r'Flops as the paper counts them \(All-MLP head unfolded\): '
                               r'([\d.]+) G', proc.stdout)[1])
    assert abs(as_paper - 8.4) / 8.4 < 0.03


def _flops(*args):
    proc = run_tool('tools/analysis_tools/get_flops.py', *args)
    return float(re.search(r'Flops: ([\d.]+) G', proc.stdout)[1])


def test_get_flops_panoptic_segformer_pvtv2_b5_matches_paper():
    """The paper's 391 G for PVTv2-B5 at 800 x 1333 counts layers only (mmcv 1.x's counter):
    without the products of activations we give 391.9 G; with them (PVTv2's spatial-reduction
    attention on 66 k stride-4 tokens) 570 G."""
    cfg = 'configs/panoptic_segformer/panoptic-segformer_pvtv2-b5_coco-panoptic-24e.py'
    flops = _flops(cfg, '--shape', '800', '1333', '--no-tensor-products')
    assert abs(flops - 391) / 391 < 0.01, flops


def test_get_flops_without_tensor_products_drops_attention_products():
    # MiT-B0 at 512: QK^T and AV of the 8 blocks are 2 * sum(blocks * N * N_reduced * C) = 1.04 G
    without = _flops(B0, '--shape', '512', '512', '--no-tensor-products')
    assert 0.9 < _flops(B0, '--shape', '512', '512') - without < 1.2


def _random_checkpoint(tmp_path):
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, B0))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    path = str(tmp_path / 'b0.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def test_benchmark_prints_fps(tmp_path):
    proc = run_tool('tools/analysis_tools/benchmark.py', B0, _random_checkpoint(tmp_path),
                    '--shape', '64', '64', '--num-iters', '3', '--warmup', '1')
    assert re.search(r'Average fps of 1 runs: [\d.]+', proc.stdout)


def test_infer_writes_overlays_and_label_maps(tmp_path, toy_ade20k):
    images = osp.join(toy_ade20k, 'images/validation')
    out = tmp_path / 'out'
    run_tool('tools/infer.py', B0, _random_checkpoint(tmp_path), images, '--out-dir', str(out))
    overlays = sorted((out / 'overlays').glob('*.png'))
    labels = sorted((out / 'label_maps').glob('*.png'))
    assert len(overlays) == len(labels) == 4
    import numpy as np
    from PIL import Image
    label = np.array(Image.open(labels[0]))
    assert label.ndim == 2 and label.max() < 150
    assert np.array(Image.open(overlays[0])).shape == (*label.shape, 3)


def test_browse_dataset_draws_samples_as_the_pipeline_outputs_them(tmp_path, toy_ade20k):
    import numpy as np
    from PIL import Image

    from tests.test_tools import write_config
    out = tmp_path / 'browse'
    proc = run_tool('tools/analysis_tools/browse_dataset.py', write_config(tmp_path, toy_ade20k),
                    '--output-dir', str(out), '--max-images', '3')
    assert '3 samples drawn in' in proc.stdout
    drawn = sorted(out.glob('*.png'))
    assert [p.name for p in drawn] == [f'0000{i}_ADE_train_0000000{i + 1}.png' for i in range(3)]
    for path in drawn:  # the config's 48x48 random crops of the 64x64 images
        assert np.array(Image.open(path)).shape == (48, 48, 3)


def test_browse_dataset_draws_panoptic_and_classification_samples(tmp_path):
    from mmseg_ext.apis.browse import browse_dataset
    from mmseg_ext.toy_data.images import make_coco_panoptic, make_imagenet
    make_coco_panoptic(str(tmp_path / 'coco'), num_train=2, num_val=1, seed=0)
    make_imagenet(str(tmp_path / 'in'), num_train=10, num_val=2, seed=0)
    for config, root in (
            ('configs/panoptic_segformer/panoptic-segformer_r18_toy-coco-panoptic.py', 'coco'),
            ('configs/ls_transformer/cvt-ls-13_toy-in1k.py', 'in')):
        cfg = Config.fromfile(osp.join(REPO, config))
        cfg.train_dataloader.dataset.data_root = str(tmp_path / root) + '/'
        written = browse_dataset(cfg, str(tmp_path / f'out_{root}'), 'train', 2)
        assert len(written) == 2 and all(osp.getsize(p) > 0 for p in written)


def test_analyze_logs_plots_training_and_validation_curves(tmp_path):
    from mmseg_ext.utils.log_curves import load_scalars
    log = tmp_path / 'run.json'
    log.write_text(
        '{"lr": 0.1, "loss": 2.0, "time": 0.5, "iter": 10, "step": 10}\n'
        '{"lr": 0.05, "loss": 1.0, "time": 0.4, "iter": 20, "step": 20}\n'
        '{"mIoU": 40.5, "aAcc": 80.0, "time": 0.1, "step": 20}\n'
        '{"lr": 0.0, "loss": 0.5, "time": 0.4, "iter": 30, "step": 30}\n')
    curves = load_scalars(str(log))
    assert curves['loss'] == ([10, 20, 30], [2.0, 1.0, 0.5])
    assert curves['mIoU'] == ([20], [40.5])
    assert curves['time'] == ([10, 20, 30], [0.5, 0.4, 0.4])  # validation's is val/time
    assert curves['val/time'] == ([20], [0.1])
    out = tmp_path / 'curves.png'
    proc = run_tool('tools/analysis_tools/analyze_logs.py', str(log), str(log), '--keys', 'loss',
                    'mIoU', '--legend', 'a', 'b', '--out', str(out))
    assert f'saved {out}' in proc.stdout and out.stat().st_size > 0
    proc = run_tool('tools/analysis_tools/analyze_logs.py', str(log), '--keys', 'PQ', '--out',
                    str(out), check=False)
    assert proc.returncode and f'{log} has no PQ; it has: aAcc, loss, lr, mIoU, time, val/time' \
        in proc.stderr
    log.write_text('{"loss": 1.0, "iter": 1, "step": 1}\n{"loss": 0.9, "it')  # cut by a crash
    with pytest.raises(ValueError, match=r'run.json, line 2: not a JSON log line'):
        load_scalars(str(log))


def test_confusion_matrix_counts_pixels_as_mmseg_scores_them(tmp_path, toy_ade20k):
    """Predictions equal to the ground truth give a diagonal matrix of the pixel counts, one
    wrong map moves its pixels to the predicted column, and on a real tools/test.py --out run
    the matrix's mIoU is the one test.py reports."""
    import shutil

    import numpy as np
    from PIL import Image

    from mmseg_ext.utils.confusion_matrix import iou_from_confusion, segmentation_confusion
    from tests.test_tools import write_config
    config = write_config(tmp_path, toy_ade20k)
    cfg = Config.fromfile(config)
    annotations = sorted(glob.glob(osp.join(toy_ade20k, 'annotations/validation/*.png')))
    preds = tmp_path / 'same'
    shutil.copytree(osp.dirname(annotations[0]), preds)  # ADE files: 0 = other, class c = c + 1
    expected = np.zeros((150, 150), np.int64)
    for path in annotations:
        labels = np.asarray(Image.open(path)).astype(np.int64)
        np.add.at(expected, (labels[labels > 0] - 1,) * 2, 1)
    matrix, classes = segmentation_confusion(cfg, str(preds))
    assert len(classes) == 150 and np.array_equal(matrix, expected)
    iou, present = iou_from_confusion(matrix), expected.diagonal() > 0
    assert (iou[present] == 100).all() and np.isnan(iou[~present]).all()
    # by hand: IoU = TP / (TP + FP + FN) = 5 / 8, 3 / 6; a class never seen nor predicted: NaN
    hand = iou_from_confusion(np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]]))
    assert np.allclose(hand[:2], [62.5, 50.0]) and np.isnan(hand[2])
    first = np.asarray(Image.open(annotations[0])).astype(np.int64)
    Image.fromarray(np.full(first.shape, 3, np.uint8)).save(preds / osp.basename(annotations[0]))
    moved = np.bincount(first[first > 0] - 1, minlength=150)
    expected -= np.diag(moved)
    expected[:, 2] += moved  # written 3 = class 2
    assert np.array_equal(segmentation_confusion(cfg, str(preds))[0], expected)
    os.remove(preds / osp.basename(annotations[1]))
    with pytest.raises(FileNotFoundError, match='tools/test.py CONFIG CKPT --out DIR'):
        segmentation_confusion(cfg, str(preds))

    out = tmp_path / 'pred'
    proc = run_tool('tools/test.py', config, _random_checkpoint(tmp_path), '--out', str(out))
    reported = float(re.search(r'mIoU: ([\d.]+)', proc.stdout + proc.stderr).group(1))
    proc = run_tool('tools/analysis_tools/confusion_matrix.py', config, str(out),
                    str(tmp_path / 'cm'))
    matrix = np.loadtxt(tmp_path / 'cm/confusion_matrix.csv', delimiter=',', dtype=np.int64)
    assert abs(np.nanmean(iou_from_confusion(matrix)) - reported) < 0.01
    assert f'mIoU{reported:>28.2f}' in proc.stdout
    assert (tmp_path / 'cm/confusion_matrix.png').stat().st_size > 0
