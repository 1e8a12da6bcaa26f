"""MiT backbone and All-MLP head: sizes, any input size, and equivalence with transformers'
Segformer and mmseg's MixVisionTransformer under the same weights."""
import pytest
import torch
from mmengine.registry import init_default_scope
from torch import nn

import mmseg_ext  # noqa: F401
from mmseg_ext.models.backbones.mit import ARCH_SETTINGS, MiT, convert_mit_state_dict
from mmseg_ext.models.decode_heads import AllMLPHead, convert_hf_head, convert_official_head

# Totals of the official model with a 150-class ADE20K head (SegFormer, Xie et al., NeurIPS 2021),
# in M params; the paper rounds them to 3.8/13.7/27.5/47.3/64.1/84.7.
PAPER_TOTALS = {'b0': 3.8, 'b1': 13.7, 'b2': 27.5, 'b3': 47.3, 'b4': 64.1, 'b5': 84.7}
COUNTED_TOTALS = {'b0': 3.75, 'b1': 13.72, 'b2': 27.46, 'b3': 47.34, 'b4': 64.11, 'b5': 84.71}


def build_segformer(arch, num_classes=150):
    init_default_scope('mmseg')  # the head builds its loss from the default scope's registry
    dims = ARCH_SETTINGS[arch]['embed_dims']
    backbone = MiT(arch=arch)
    head = AllMLPHead(in_channels=list(dims), in_index=[0, 1, 2, 3],
                      channels=256 if arch in ('b0', 'b1') else 768, num_classes=num_classes,
                      norm_cfg=dict(type='BN'), align_corners=False, dropout_ratio=0.1)
    return backbone, head


def count(*modules):
    return sum(p.numel() for m in modules for p in m.parameters()) / 1e6


@pytest.mark.parametrize('arch', list(ARCH_SETTINGS))
def test_param_counts_match_paper(arch):
    total = count(*build_segformer(arch))
    assert round(total, 1) == PAPER_TOTALS[arch]
    assert abs(total - COUNTED_TOTALS[arch]) < 0.01


@pytest.mark.parametrize('hw', [(64, 64), (67, 93), (33, 130)])
def test_any_input_size(hw):
    backbone, head = build_segformer('b0', num_classes=7)
    backbone.eval(), head.eval()
    x = torch.randn(1, 3, *hw)
    feats = backbone(x)
    expected = [((hw[0] - 1) // 4 + 1, (hw[1] - 1) // 4 + 1)]
    for _ in range(3):
        h, w = expected[-1]
        expected.append(((h - 1) // 2 + 1, (w - 1) // 2 + 1))
    assert [tuple(f.shape[2:]) for f in feats] == expected
    assert [f.shape[1] for f in feats] == [32, 64, 160, 256]
    logits = head(feats)
    assert logits.shape == (1, 7, *expected[0])


def test_every_parameter_gets_a_gradient():
    """DDP needs no find_unused_parameters: every parameter takes part in the loss."""
    backbone, head = build_segformer('b0', num_classes=5)
    head(backbone(torch.randn(2, 3, 64, 64))).sum().backward()
    unused = [n for m in (backbone, head) for n, p in m.named_parameters() if p.grad is None]
    assert unused == []


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    plain = MiT(arch='b0', drop_path_rate=0.)
    ckpt = MiT(arch='b0', drop_path_rate=0., with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 64, 64)
    grads = []
    for model in (plain, ckpt):
        sum(f.square().mean() for f in model(x)).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def _set_layernorm_eps(module, eps):
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            m.eps = eps


@pytest.mark.parametrize('match_eps', [True, False])
def test_matches_transformers_segformer(match_eps):
    """Same weights as a randomly initialised HF SegformerForSemanticSegmentation -> same
    logits. HF uses LayerNorm eps 1e-5 everywhere, the official code (and we) 1e-6 in blocks and
    stage ends: with the eps matched the logits agree to float32 round-off (1e-5); with our
    default eps they still agree to about 1e-3 relative."""
    transformers = pytest.importorskip('transformers')
    torch.manual_seed(0)
    config = transformers.SegformerConfig(num_labels=11)
    hf = transformers.SegformerForSemanticSegmentation(config).eval()
    for m in hf.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    state = hf.state_dict()
    backbone, head = build_segformer('b0', num_classes=11)
    backbone.load_state_dict(convert_mit_state_dict(
        {k: v for k, v in state.items() if k.startswith('segformer.')}))
    head.load_state_dict(convert_hf_head(
        {k.removeprefix('decode_head.'): v for k, v in state.items()
         if k.startswith('decode_head.')}))
    backbone.eval(), head.eval()
    if match_eps:
        _set_layernorm_eps(backbone, 1e-5)
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        ref = hf(pixel_values=x).logits
        ours = head(backbone(x))
    tol = 1e-5 if match_eps else 2e-3
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol * ref.abs().max().item())


def test_matches_mmseg_mix_vision_transformer():
    """Same weights as mmseg 1.2.2's MixVisionTransformer (eps 1e-6 everywhere) -> same
    features; our patch-embedding / reduction norms use the official 1e-5, matched here."""
    from mmseg.models.backbones import MixVisionTransformer
    torch.manual_seed(0)
    ref = MixVisionTransformer(embed_dims=32, num_layers=[2, 2, 2, 2], num_heads=[1, 2, 5, 8],
                               drop_path_rate=0.).eval()
    ours = MiT(arch='b0').eval()
    ours.load_state_dict(convert_mit_state_dict(ref.state_dict()))
    _set_layernorm_eps(ours, 1e-6)
    x = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        for a, b in zip(ours(x), ref(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _to_official(state):
    """Our backbone keys -> official ones, written independently of the converter."""
    names = {'mlp.dwconv': 'mlp.dwconv.dwconv'}
    out = {}
    for key, value in state.items():
        parts = key.split('.')
        stage = int(parts[1]) + 1
        if parts[2] == 'patch_embed':
            out[f'patch_embed{stage}.{parts[3]}.{parts[4]}'] = value
        elif parts[2] == 'norm':
            out[f'norm{stage}.{parts[3]}'] = value
        else:
            inner = '.'.join(parts[4:-1])
            out[f'block{stage}.{parts[3]}.{names.get(inner, inner)}.{parts[-1]}'] = value
    return out


def test_official_state_dict_round_trips():
    torch.manual_seed(0)
    ours = MiT(arch='b1')
    official = _to_official(ours.state_dict())
    assert 'block3.1.attn.kv.weight' in official and 'block1.0.mlp.dwconv.dwconv.weight' in official
    official['head.weight'] = torch.zeros(1000, 512)  # ImageNet classifier is dropped
    back = convert_mit_state_dict(official)
    assert set(back) == set(ours.state_dict())
    for k, v in ours.state_dict().items():
        assert torch.equal(back[k], v), k


def test_official_head_keys():
    backbone, head = build_segformer('b0', num_classes=3)
    state = {f'linear_c{i + 1}.proj.{p}': v for i, lin in enumerate(head.linear_c)
             for p, v in lin.state_dict().items()}
    state.update({f'linear_fuse.{k}': v for k, v in head.linear_fuse.state_dict().items()})
    state.update({f'linear_pred.{k}': v for k, v in head.conv_seg.state_dict().items()})
    state['conv_seg.weight'] = torch.zeros(1)  # unused in the official model
    converted = convert_official_head(state)
    assert set(converted) == set(head.state_dict())


def test_unknown_keys_are_named():
    with pytest.raises(KeyError, match='block1.0.attn.qkv.weight'):
        convert_mit_state_dict({'patch_embed1.proj.weight': torch.zeros(1),
                                'block1.0.attn.qkv.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='cannot tell the layout'):
        convert_mit_state_dict({'foo.bar': torch.zeros(1)})
