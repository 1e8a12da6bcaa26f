"""Reduced-precision ONNX exports (INT8 static quantization, fp16) of the toy SegFormer-B0 and
MiT-LS, their mIoU gate, and a damaged quantization that the gate must refuse.

The models have a random backbone and a classifier fitted by least squares on built-in training
images (tests/helpers/fitted_head.py), so their mIoU is far above chance and a broken export
loses it visibly."""
import os.path as osp
import re

import onnx
import pytest
import torch
from onnx import numpy_helper

from tests.conftest import REPO
from tests.helpers.fitted_head import fit_classifier
from tools.deployment import pytorch2onnx

B0_TOY = 'configs/segformer/mit-b0_toy-ade20k.py'
LS_TOY = 'configs/ls_transformer/mit-ls-b0_toy-ade20k.py'
EXPORT = 'tools/deployment/pytorch2onnx.py'
SHAPE = ('64', '64')


def absent_data(tmp):
    """--cfg-options pointing both splits at a missing folder: the built-in data is used."""
    return ['--cfg-options', f'test_dataloader.dataset.data_root={tmp / "absent"}',
            f'train_dataloader.dataset.data_root={tmp / "absent"}']


def fitted_checkpoint(config, tmp):
    """A checkpoint of ``config``: random weights, classifier fitted on 8 built-in images."""
    from mmseg_ext.apis import init_segmentor, load_config
    from mmseg_ext.deploy import real_samples
    cfg = load_config(osp.join(REPO, config))
    cfg.train_dataloader.dataset.data_root = str(tmp / 'absent')
    torch.manual_seed(0)
    model = init_segmentor(cfg)
    _, train = real_samples(cfg, 8, str(tmp / 'fit'), split='train')
    fit_classifier(model, train)
    path = str(tmp / 'fitted.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model, path


def gate(stdout):
    """(same-argmax %, mIoU pytorch, mIoU onnxruntime, drop) as the gate printed them."""
    same = float(re.search(r'same argmax\s+([\d.]+) %', stdout)[1])
    miou = dict(re.findall(r'mIoU (pytorch|onnxruntime)\s+([\d.]+)', stdout))
    drop = float(re.search(r'mIoU drop\s+(-?[\d.]+) points', stdout)[1])
    return same, float(miou['pytorch']), float(miou['onnxruntime']), drop


def producers(model):
    return {out: node for node in model.graph.node for out in node.output}


def fed_by_dequantize(model, node):
    """Whether any input of ``node`` comes straight from a DequantizeLinear (runs in int8)."""
    made_by = producers(model)
    return any(made_by.get(i) is not None and made_by[i].op_type == 'DequantizeLinear'
               for i in node.input)


@pytest.fixture(scope='module')
def b0_int8(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('int8_b0')
    _, ckpt = fitted_checkpoint(B0_TOY, tmp)
    out = str(tmp / 'b0_int8.onnx')
    return tmp, ckpt, out


def test_b0_int8_export_passes_gate_with_fp32_kept_where_fragile(b0_int8, capsys):
    tmp, ckpt, out = b0_int8
    code = pytorch2onnx.main([osp.join(REPO, B0_TOY), ckpt, '--out', out, '--shape', *SHAPE,
                             '--quantize', 'int8', '--calib-images', '4', '--num-images', '3',
                             *absent_data(tmp)])
    stdout = capsys.readouterr().out
    assert code == 0 and 'PASSED' in stdout, stdout
    assert 'int8 kernels:' in stdout
    same, miou_fp32, miou_int8, drop = gate(stdout)
    assert miou_fp32 > 20  # the fitted classifier: far above chance over 150 classes
    assert drop == pytest.approx(miou_fp32 - miou_int8, abs=0.011) and drop <= 0.5
    model = onnx.load(out)
    int8 = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 18  # every backbone conv weight at least
    ops = {n.op_type for n in model.graph.node}
    assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
    # Conv / MatMul of the backbone run in int8; LayerNorm, Softmax and the head do not.
    backbone_convs = [n for n in model.graph.node if n.op_type == 'Conv']
    assert all(fed_by_dequantize(model, n) for n in backbone_convs)
    for node in model.graph.node:
        if node.op_type in ('LayerNormalization', 'Softmax'):
            assert not fed_by_dequantize(model, node), node.name
    head_matmuls = [n for n in model.graph.node if n.op_type == 'MatMul' and any(
        'segmentor.decode_head' in p.value for p in n.metadata_props)]
    assert head_matmuls and not any(fed_by_dequantize(model, n) for n in head_matmuls)


def test_damaged_int8_scale_fails_gate(b0_int8, tmp_path, capsys):
    """A corrupted weight scale (the first patch embedding's, x8) loses mIoU: exit status 1."""
    _, ckpt, out = b0_int8
    if not osp.exists(out):
        pytest.skip('needs the int8 export of the previous test')
    model = onnx.load(out)
    made_by = producers(model)
    conv = next(n for n in model.graph.node if n.op_type == 'Conv')
    dequant = made_by[conv.input[1]]
    scale = next(t for t in model.graph.initializer if t.name == dequant.input[1])
    scale.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(scale) * 8, scale.name))
    damaged = str(tmp_path / 'damaged.onnx')
    onnx.save(model, damaged)
    code = pytorch2onnx.main([osp.join(REPO, B0_TOY), ckpt, '--out', damaged, '--verify-only',
                             '--quantize', 'int8', '--num-images', '3', *absent_data(tmp_path)])
    stdout = capsys.readouterr().out
    assert code == 1 and 'FAILED' in stdout, stdout
    assert gate(stdout)[3] > 0.5


def test_b0_fp16_export_passes_gate(b0_int8, tmp_path, capsys):
    _, ckpt, _ = b0_int8
    out = str(tmp_path / 'b0_fp16.onnx')
    code = pytorch2onnx.main([osp.join(REPO, B0_TOY), ckpt, '--out', out, '--shape', *SHAPE,
                             '--precision', 'fp16', '--num-images', '3', *absent_data(tmp_path)])
    stdout = capsys.readouterr().out
    assert code == 0 and 'PASSED' in stdout, stdout
    same, _, _, drop = gate(stdout)
    assert same > 99 and drop <= 0.5
    model = onnx.load(out)
    assert {o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')} == {18}
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    assert dtypes['segmentor.backbone.stages.0.patch_embed.proj.weight'] == \
        onnx.TensorProto.FLOAT16
    # LayerNorm, Softmax and the decode head's products read float32 (ONNX's type inference).
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]  # types as ONNX infers them, not as the converter wrote them
    inferred = onnx.shape_inference.infer_shapes(bare).graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*inferred.value_info,
                                                            *inferred.input)}
    types.update(dtypes)
    fp32_nodes = [n for n in model.graph.node if n.op_type in ('LayerNormalization', 'Softmax')
                  or n.op_type == 'MatMul' and any('segmentor.decode_head' in p.value
                                                   for p in n.metadata_props)]
    assert len(fp32_nodes) > 30
    for node in fp32_nodes:
        assert types.get(node.input[0]) == onnx.TensorProto.FLOAT, node.name
    backbone_matmuls = [n for n in model.graph.node if n.op_type == 'MatMul' and
                        n not in fp32_nodes]
    backbone_types = [types.get(n.input[0]) for n in backbone_matmuls]
    assert backbone_types.count(onnx.TensorProto.FLOAT16) >= 20
    assert onnx.TensorProto.FLOAT not in backbone_types
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_mit_ls_int8_and_fp16_pass_gate(tmp_path):
    """MiT-LS (LSAttention2d stages) through both reduced-precision paths of the package."""
    from mmseg_ext.apis import load_config
    from mmseg_ext.deploy import export_onnx, parity_gate, real_samples
    from mmseg_ext.deploy.precision import OPSET, convert_fp16, quantize_int8
    model, _ = fitted_checkpoint(LS_TOY, tmp_path)
    cfg = load_config(osp.join(REPO, LS_TOY))
    cfg.test_dataloader.dataset.data_root = str(tmp_path / 'absent')
    fp32 = str(tmp_path / 'ls.onnx')
    export_onnx(model, fp32, (64, 64), opset=OPSET)
    _, calib = real_samples(cfg, 4, str(tmp_path / 'fit'), split='train')
    source, test = real_samples(cfg, 3, str(tmp_path / 'gate'))
    int8 = quantize_int8(fp32, str(tmp_path / 'ls_int8.onnx'), calib, 4)
    fp16 = convert_fp16(fp32, str(tmp_path / 'ls_fp16.onnx'))
    for precision, path in (('int8', int8), ('fp16', fp16)):
        report = parity_gate(model, path, test, source, 3, precision=precision,
                             max_miou_drop=0.5)
        assert report.passed, report.summary()
        assert report.miou['pytorch'] > 20 and report.agreement > 0.9
