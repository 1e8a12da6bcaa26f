"""AllMLPHead computes the paper's decoder folded (issue 13). It must equal the unfolded
decoder, written out below from the paper (Sec. 3.2, Eq. 4) and the official code's layer
order, forward and backward, in eval and train mode, and never build the 4C-channel map."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope
from torch.utils._python_dispatch import TorchDispatchMode

from mmseg_ext.models.decode_heads import AllMLPHead
from mmseg_ext.utils.flops import count_flops

# The 1/4 map is 17 x 21: the coarser levels (9 x 11, 5 x 6, 3 x 3) do not divide it evenly.
LEVEL_SHAPES = [(17, 21), (9, 11), (5, 6), (3, 3)]


def unfolded_reference(head, feats):
    """Eq. 4 step by step: per level Linear(C_i, C) on the flattened tokens -> bilinear
    upsampling of levels 2-4 to the 1/4 map (align_corners=False; level 1 is there already
    and, as in the official code, not resized) -> concatenation in the order
    [c4, c3, c2, c1] -> 1x1 conv without bias -> BN -> ReLU -> Dropout2d -> 1x1 classifier."""
    size = feats[0].shape[2:]
    maps = []
    for x, linear in zip(feats, head.linear_c):
        b, _, h, w = x.shape
        tokens = linear(x.flatten(2).transpose(1, 2))
        y = tokens.transpose(1, 2).reshape(b, -1, h, w)
        maps.append(y if not maps else F.interpolate(y, size, mode='bilinear',
                                                     align_corners=False))
    x = F.conv2d(torch.cat(maps[::-1], dim=1), head.linear_fuse.conv.weight)
    bn = head.linear_fuse.bn
    x = F.batch_norm(x, bn.running_mean.clone(), bn.running_var.clone(), bn.weight, bn.bias,
                     head.training, bn.momentum, bn.eps)
    x = F.dropout2d(F.relu(x), head.dropout_ratio, head.training)
    return F.conv2d(x, head.conv_seg.weight, head.conv_seg.bias)


def build_head(in_channels, channels, seed=0):
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    head = AllMLPHead(in_channels=in_channels, in_index=list(range(len(in_channels))),
                      channels=channels, num_classes=7, norm_cfg=dict(type='BN'),
                      align_corners=False, dropout_ratio=0.1)
    bn = head.linear_fuse.bn  # non-trivial affine map and running statistics
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    feats = [torch.randn(2, c, *hw) for c, hw in zip(in_channels, LEVEL_SHAPES)]
    return head, feats


# MiT-B0's widths with C = 256, and a head narrower than its deepest inputs (C < C_i).
CONFIGS = [([32, 64, 160, 256], 256), ([16, 32, 80, 128], 48)]


def assert_rel_close(actual, expected, rel):
    torch.testing.assert_close(actual, expected, rtol=rel,
                               atol=rel * expected.abs().max().item())


@pytest.mark.parametrize('in_channels,channels', CONFIGS)
def test_eval_forward_and_gradients_equal_unfolded(in_channels, channels):
    head, feats = build_head(in_channels, channels)
    head.eval()
    grads = []
    for fn in (head, lambda f: unfolded_reference(head, f)):
        head.zero_grad()
        out = fn(feats)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append({n: p.grad.clone() for n, p in head.named_parameters()})
        if fn is head:
            folded = out.detach()
    assert_rel_close(folded, out.detach(), 1e-5)
    assert set(grads[0]) == {n for n, _ in head.named_parameters()}
    for name, ref in grads[1].items():
        assert_rel_close(grads[0][name], ref, 1e-4)


@pytest.mark.parametrize('in_channels,channels', CONFIGS)
def test_train_forward_and_gradients_equal_unfolded(in_channels, channels):
    """Train mode: BN on batch statistics, Dropout2d with the same random draws. Gradients in
    float64: through batch statistics the pre-BN biases get an exactly zero gradient, which
    float32 round-off would turn into noise of relative size 1."""
    head, feats = build_head(in_channels, channels)
    head.train()
    torch.manual_seed(1)
    folded = head(feats)
    torch.manual_seed(1)
    ref = unfolded_reference(head, feats)
    assert_rel_close(folded, ref, 1e-5)
    head.double()
    grads = []
    for fn in (head, lambda f: unfolded_reference(head, f)):
        head.zero_grad()
        torch.manual_seed(1)
        out = fn([f.double() for f in feats])
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out))
        grads.append({n: p.grad.clone() for n, p in head.named_parameters()})
    for name, ref in grads[1].items():
        torch.testing.assert_close(grads[0][name], ref, rtol=1e-4, atol=1e-10, msg=name)


class _WidestAtQuarter(TorchDispatchMode):
    """Records the most channels of any 4D tensor an op produces at the 1/4 map's size."""

    def __init__(self, size):
        super().__init__()
        self.size, self.widest = tuple(size), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.dim() == 4 and tuple(t.shape[2:]) == self.size:
                self.widest = max(self.widest, t.shape[1])
        return out


@pytest.mark.parametrize('training', [False, True])
def test_no_concatenated_map_at_quarter_resolution(training):
    """Folding exists to avoid the 4C-channel concatenation at 1/4 resolution (and its fuse
    conv); the widest map there has C channels, forward and backward."""
    head, feats = build_head(*CONFIGS[0])
    head.train(training)
    feats = [f.requires_grad_() for f in feats]
    with _WidestAtQuarter(LEVEL_SHAPES[0]) as mode:
        out = head(feats)
        out.sum().backward()
    assert mode.widest == head.channels
    with _WidestAtQuarter(LEVEL_SHAPES[0]) as mode:
        unfolded_reference(head, feats)
    assert mode.widest == 4 * head.channels  # the check sees the concatenation when it exists


class _Unfolded(torch.nn.Module):

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, feats):
        return unfolded_reference(self.head, feats)


@pytest.mark.parametrize('tensor_products', [True, False])
@pytest.mark.parametrize('training', [False, True])
@pytest.mark.parametrize('in_channels,channels', CONFIGS)
def test_unfolded_extra_macs_is_what_the_unfolded_decoder_adds(in_channels, channels, training,
                                                               tensor_products):
    """FlopAnalyzer's count of the folded head plus ``unfolded_extra_macs`` is its count of the
    decoder as written, to the MAC: with and without products of two tensors (forming F_i W_i),
    in eval mode (BN folded) and in training (BN run by both)."""
    head, feats = build_head(in_channels, channels)
    head.train(training)
    with torch.no_grad():
        executed, _ = count_flops(head, (feats, ), tensor_products=tensor_products)
        unfolded, _ = count_flops(_Unfolded(head), (feats, ), tensor_products=tensor_products)
    extra = head.unfolded_extra_macs([f.shape for f in feats], weight_products=tensor_products)
    assert executed + extra == unfolded
