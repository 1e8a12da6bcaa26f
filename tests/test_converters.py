"""tools/model_converters/segformer_weights.py: official, HF and mmseg checkpoints convert to
files that load strictly into our configs and give the source model's outputs."""
import contextlib
import os
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_ext.utils import check_checkpoint_matches
from tests.conftest import REPO, run_tool
from tests.test_mit import _to_official

B0_CONFIG = osp.join(REPO, 'configs/segformer/mit-b0_ade20k.py')


def build_b0(num_classes, **head):
    init_default_scope('mmseg')
    cfg = Config.fromfile(B0_CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.update(num_classes=num_classes, norm_cfg=dict(type='BN'), **head)
    return MODELS.build(cfg.model).eval()


def logits(model, x):
    with torch.no_grad():
        return model.decode_head(model.backbone(x))


def test_hf_save_pretrained_directory(tmp_path):
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    hf = transformers.SegformerForSemanticSegmentation(
        transformers.SegformerConfig(num_labels=150)).eval()
    hf.save_pretrained(tmp_path / 'hf')
    dst = str(tmp_path / 'ours.pth')
    run_tool('tools/model_converters/segformer_weights.py', str(tmp_path / 'hf'), dst,
             '--from', 'hf')
    model = build_b0(150)
    check_checkpoint_matches(model, dst)  # what tools/test.py checks before testing
    model.load_state_dict(torch.load(dst)['state_dict'])
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = hf(pixel_values=x).logits
    # LayerNorm eps differs (HF 1e-5, official/ours 1e-6): see tests/test_mit.py.
    torch.testing.assert_close(logits(model, x), ref, rtol=2e-3, atol=2e-3 * ref.abs().max())


def save_official_b0(path):
    """An official-layout B0 checkpoint at ``path``; returns the model it was written from."""
    torch.manual_seed(0)
    source = build_b0(150)
    for m in source.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
    head = source.decode_head
    official = {f'backbone.{k}': v for k, v in _to_official(source.backbone.state_dict()).items()}
    for i, lin in enumerate(head.linear_c):
        for p, v in lin.state_dict().items():
            official[f'decode_head.linear_c{i + 1}.proj.{p}'] = v
    for k, v in head.linear_fuse.state_dict().items():
        official[f'decode_head.linear_fuse.{k}'] = v
    for k, v in head.conv_seg.state_dict().items():
        official[f'decode_head.linear_pred.{k}'] = v
    official['decode_head.conv_seg.weight'] = torch.zeros(150, 256, 1, 1)  # unused, dropped
    torch.save({'state_dict': official, 'meta': {}}, path)
    return source


def test_official_full_checkpoint(tmp_path):
    source = save_official_b0(tmp_path / 'official.pth')
    dst = str(tmp_path / 'ours.pth')
    proc = run_tool('tools/model_converters/segformer_weights.py', str(tmp_path / 'official.pth'),
                    dst, '--from', 'official')
    assert 'dropped decode_head.conv_seg.weight' in proc.stdout
    model = build_b0(150)
    check_checkpoint_matches(model, dst)
    model.load_state_dict(torch.load(dst)['state_dict'])
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(logits(model, x), logits(source, x), rtol=0, atol=0)


def test_an_interrupted_conversion_keeps_the_previous_file(tmp_path, monkeypatch):
    tool = osp.join(REPO, 'tools/model_converters/segformer_weights.py')
    save_official_b0(tmp_path / 'official.pth')
    dst = tmp_path / 'ours.pth'
    dst.write_bytes(b'the previous conversion')

    def disk_full(obj, f):  # torch.save to a path or a file object, failing half-way
        with open(f, 'wb') if isinstance(f, (str, os.PathLike)) else contextlib.nullcontext(f) as f:
            f.write(b'half a checkpoint')
        raise OSError('No space left on device')

    monkeypatch.setattr(torch, 'save', disk_full)
    monkeypatch.setattr(sys, 'argv', [tool, str(tmp_path / 'official.pth'), str(dst), '--from',
                                      'official'])
    with pytest.raises(OSError, match='No space left'):
        runpy.run_module('tools.model_converters.segformer_weights', run_name='__main__')
    assert dst.read_bytes() == b'the previous conversion'
    assert sorted(os.listdir(tmp_path)) == ['official.pth', 'ours.pth']  # no temporary file left


def test_mmseg_checkpoint_with_its_own_head(tmp_path):
    from mmseg.models.backbones import MixVisionTransformer
    from mmseg.models.decode_heads import SegformerHead
    torch.manual_seed(0)
    backbone = MixVisionTransformer(embed_dims=32, num_layers=[2, 2, 2, 2],
                                    num_heads=[1, 2, 5, 8])
    head = SegformerHead(in_channels=[32, 64, 160, 256], in_index=[0, 1, 2, 3], channels=256,
                         num_classes=150, norm_cfg=dict(type='BN'))
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state.update({f'decode_head.{k}': v for k, v in head.state_dict().items()})
    torch.save({'state_dict': state}, tmp_path / 'mmseg.pth')
    dst = str(tmp_path / 'ours.pth')
    run_tool('tools/model_converters/segformer_weights.py', str(tmp_path / 'mmseg.pth'), dst,
             '--from', 'mmseg')
    init_default_scope('mmseg')
    cfg = Config.fromfile(B0_CONFIG)
    cfg.model.backbone.init_cfg = None
    cfg.model.decode_head.update(type='SegformerHead', norm_cfg=dict(type='BN'))
    model = MODELS.build(cfg.model).eval()
    check_checkpoint_matches(model, dst)


def test_wrong_layout_is_named(tmp_path):
    torch.save({'state_dict': {'backbone.patch_embed1.proj.weight': torch.zeros(1),
                               'backbone.block1.0.attn.qkv.weight': torch.zeros(1)}},
               tmp_path / 'x.pth')
    proc = run_tool('tools/model_converters/segformer_weights.py', str(tmp_path / 'x.pth'),
                    str(tmp_path / 'y.pth'), '--from', 'official', check=False)
    assert proc.returncode != 0 and 'block1.0.attn.qkv.weight' in proc.stderr


def test_imagenet_backbone_loads_through_init_cfg(tmp_path):
    from mmseg_ext.models.backbones import MiT
    torch.manual_seed(0)
    source = MiT(arch='b0')
    state = _to_official(source.state_dict())
    state['head.weight'], state['head.bias'] = torch.zeros(1000, 256), torch.zeros(1000)
    torch.save(state, tmp_path / 'mit_b0.pth')
    model = MiT(arch='b0', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path /
                                                                          'mit_b0.pth')))
    model.init_weights()
    for k, v in source.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_imagenet_backbone_into_mit_with_ls_attention(tmp_path):
    """MiT-LS: ImageNet weights fill everything but the LS attention of stages 1-2; a truly
    missing key elsewhere still fails."""
    from mmseg_ext.models.backbones import MiT
    torch.manual_seed(0)
    source = MiT(arch='b0')
    state = _to_official(source.state_dict())
    torch.save(state, tmp_path / 'mit_b0.pth')
    ls = dict(type='LSAttention2d', window_size=4, dp_rank=4)
    init_cfg = dict(type='Pretrained', checkpoint=str(tmp_path / 'mit_b0.pth'))
    model = MiT(arch='b0', stage_attn_cfgs=[ls, ls, None, None], init_cfg=init_cfg)
    model.init_weights()
    own = model.state_dict()
    for k, v in source.state_dict().items():
        if k.startswith(('stages.0.', 'stages.1.')) and '.attn.' in k:
            assert k not in own or not torch.equal(own[k], v)
        else:
            assert torch.equal(own[k], v), k
    del state['norm4.weight']
    torch.save(state, tmp_path / 'broken.pth')
    init_cfg['checkpoint'] = str(tmp_path / 'broken.pth')
    with pytest.raises(KeyError, match=r'missing keys \(1\): stages.3.norm.weight'):
        MiT(arch='b0', stage_attn_cfgs=[ls, ls, None, None], init_cfg=init_cfg).init_weights()


def test_publish_in_hf_format_loads_in_transformers_with_equal_logits(tmp_path):
    """--to hf writes a directory that HF's own class loads with every key used, class names
    from the dataset, and HF's logits equal ours (HF's LayerNorm eps 1e-5 against our 1e-6
    is the only difference)."""
    transformers = pytest.importorskip('transformers')
    from mmseg.datasets import ADE20KDataset
    config = osp.join(REPO, 'configs/segformer/mit-b0_toy-ade20k.py')
    init_default_scope('mmseg')
    cfg = Config.fromfile(config)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    ckpt = str(tmp_path / 'ours.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out = tmp_path / 'hf'
    run_tool('tools/model_converters/segformer_weights.py', ckpt, str(out), '--to', 'hf',
             '--config', config, env={'BLOCKED_IMPORTS': ''})
    assert {'config.json', 'model.safetensors'} <= set(os.listdir(out))
    hf, info = transformers.SegformerForSemanticSegmentation.from_pretrained(
        out, output_loading_info=True)
    assert not any(info.values()), info  # no missing / unexpected / mismatched key
    classes = ADE20KDataset.METAINFO['classes']
    assert hf.config.id2label == dict(enumerate(classes))
    assert hf.config.label2id['wall'] == 0 and hf.config.num_labels == 150
    assert hf.config.depths == [2, 2, 2, 2] and hf.config.decoder_hidden_size == 256
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        ref = hf.eval()(pixel_values=x).logits
    torch.testing.assert_close(logits(model, x), ref, rtol=0, atol=1e-4)


def test_publish_in_hf_format_refuses_mit_ls(tmp_path):
    """HF SegFormer has only the efficient self-attention: an MiT-LS model is refused, named."""
    pytest.importorskip('transformers')
    from mmseg_ext.models.segformer_hf import hf_config
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'configs/ls_transformer/mit-ls-b0_toy-ade20k.py'))
    model = MODELS.build(cfg.model)
    with pytest.raises(TypeError, match='stage_attn_cfgs'):
        hf_config(model, [str(i) for i in range(150)])
