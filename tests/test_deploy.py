"""ONNX deployment (issue 13): export through tools/deployment/pytorch2onnx.py, its parity
gate, ONNX Runtime inference through tools/infer.py against mmseg's own PyTorch inference."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.conftest import REPO, run_tool

B0_TOY = 'configs/segformer/mit-b0_toy-ade20k.py'
LS_TOY = 'configs/ls_transformer/mit-ls-b0_toy-ade20k.py'
EXPORT = 'tools/deployment/pytorch2onnx.py'


def random_checkpoint(config, path):
    """Randomly initialised weights with non-trivial BN statistics, saved as a checkpoint."""
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, config))
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


def gate_numbers(stdout):
    """max |logits difference|, same-argmax share (%) and the two mIoUs the gate printed."""
    diff = float(re.search(r'max \|logits difference\|\s+(\S+)', stdout)[1])
    same = float(re.search(r'same argmax\s+([\d.]+) %', stdout)[1])
    miou = {k: float(v) for k, v in re.findall(r'mIoU (pytorch|onnxruntime)\s+([\d.]+)', stdout)}
    return diff, same, miou


def assert_gate_passed(stdout):
    diff, same, miou = gate_numbers(stdout)
    assert 'PASSED' in stdout
    assert diff < 1e-4 and same == 100.0
    assert set(miou) == {'pytorch', 'onnxruntime'}
    assert miou['pytorch'] == miou['onnxruntime']


@pytest.fixture(scope='module')
def b0_export(tmp_path_factory):
    """The toy SegFormer-B0 exported with free H and W; the gate on 3 built-in images (the
    config's data root is pointed at a missing folder, whatever data/ holds)."""
    tmp = tmp_path_factory.mktemp('onnx_b0')
    ckpt = random_checkpoint(B0_TOY, tmp / 'b0.pth')
    onnx_file = str(tmp / 'b0.onnx')
    proc = run_tool(EXPORT, B0_TOY, ckpt, '--out', onnx_file, '--dynamic', '--num-images', '3',
                    '--cfg-options', f'test_dataloader.dataset.data_root={tmp / "absent"}')
    return ckpt, onnx_file, proc.stdout


def test_b0_dynamic_export_passes_gate_and_runs_any_size(b0_export):
    from mmseg_ext.apis import init_segmentor
    from mmseg_ext.deploy import OnnxSegmentor, SegmentorGraph
    ckpt, onnx_file, stdout = b0_export
    assert 'H x W free' in stdout and 'built-in ade20k data' in stdout
    assert_gate_passed(stdout)
    graph = SegmentorGraph(init_segmentor(osp.join(REPO, B0_TOY), ckpt))
    session = OnnxSegmentor(onnx_file)
    assert session.static_shape is None
    for shape in [(96, 160), (67, 93)]:
        image = torch.rand(1, 3, *shape) * 255
        with torch.no_grad():
            ref = graph(image)
        out = session.run(image.numpy())
        assert out.shape == (1, 150, *shape)
        torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-4)


def test_ls_export_passes_gate(tmp_path):
    """MiT-LS (LSAttention2d in stages 1-2) exports: no data-dependent control flow."""
    ckpt = random_checkpoint(LS_TOY, tmp_path / 'ls.pth')
    proc = run_tool(EXPORT, LS_TOY, ckpt, '--out', str(tmp_path / 'ls.onnx'), '--shape', '64',
                    '96', '--num-images', '2')
    assert 'input image [1, 3, 64 x 96]' in proc.stdout
    assert_gate_passed(proc.stdout)


def test_changed_weight_fails_gate(b0_export, tmp_path):
    """An export that differs from the checkpoint (one weight tensor changed) is refused with
    a non-zero exit status."""
    import onnx
    from onnx import numpy_helper
    ckpt, onnx_file, _ = b0_export
    model = onnx.load(onnx_file)
    init = next(t for t in model.graph.initializer if t.name.endswith('conv_seg.weight'))
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    wrong = str(tmp_path / 'wrong.onnx')
    onnx.save(model, wrong)
    from tools.deployment import pytorch2onnx as tool
    assert tool.main([osp.join(REPO, B0_TOY), ckpt, '--out', wrong, '--verify-only',
                      '--num-images', '2']) == 1


def test_infer_onnxruntime_matches_pytorch_inference(b0_export, toy_ade20k, tmp_path):
    """tools/infer.py --backend onnxruntime writes the label maps of mmseg's own PyTorch
    inference (test pipeline, model, resize to the image, argmax)."""
    import mmcv
    from mmseg.apis import inference_model

    from mmseg_ext.apis import init_segmentor
    ckpt, onnx_file, _ = b0_export
    images = osp.join(toy_ade20k, 'images/validation')
    run_tool('tools/infer.py', B0_TOY, onnx_file, images, '--out-dir', str(tmp_path),
             '--backend', 'onnxruntime')
    model = init_segmentor(osp.join(REPO, B0_TOY), ckpt)
    names = sorted(p.name for p in (tmp_path / 'label_maps').glob('*.png'))
    assert len(names) == 4
    for name in names:
        img = mmcv.imread(osp.join(images, name.replace('.png', '.jpg')))
        ref = inference_model(model, img).pred_sem_seg.data[0].numpy()
        ours = mmcv.imread(str(tmp_path / 'label_maps' / name), flag='unchanged')
        assert ours.shape == ref.shape
        assert np.mean(ours == ref) >= 0.999


def test_slide_matches_mmseg_slide_inference():
    """Sliding-window configs (Cityscapes): the predictor's windows around the graph give the
    logits of mmseg's ``slide_inference`` on the preprocessed image."""
    from mmseg.registry import MODELS

    from mmseg_ext.deploy import SegmentorGraph
    from mmseg_ext.deploy.predictor import slide
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, B0_TOY))
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg = dict(mode='slide', crop_size=(48, 48), stride=(32, 32))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    image = torch.randint(0, 256, (3, 70, 101), dtype=torch.uint8)
    inputs = model.data_preprocessor(dict(inputs=[image]), False)['inputs']
    with torch.no_grad():
        ref = model.slide_inference(inputs, [dict(img_shape=(70, 101), ori_shape=(70, 101))])
        ours = slide(SegmentorGraph(model), image.float()[None], (48, 48), (32, 32))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
