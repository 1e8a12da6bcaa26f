"""Property tests of the Long-Short attention modules against an independent dense reference."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from mmseg_ext.models.layers import CausalLSAttention1d, LSAttention1d, LSAttention2d

C, HEADS = 8, 2
D = C // HEADS


def make(cls, dtype=torch.float64, seed=0, **kwargs):
    torch.manual_seed(seed)
    m = cls(embed_dims=C, num_heads=HEADS, **kwargs).to(dtype).eval()
    with torch.no_grad():  # non-trivial affine parameters, so that a wrong assignment shows
        for ln in (m.dual_ln.short, m.dual_ln.long):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.normal_(0, 0.3)
        if getattr(m, 'rel_pos_table', None) is not None:
            m.rel_pos_table.normal_(0, 1)
    return m


# ---------------------------------------------------------------- dense reference (no windows)
def ref_heads(m, x):
    b, n, _ = x.shape
    qkv = F.linear(x, m.qkv.weight, m.qkv.bias).view(b, n, 3, HEADS, D).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def ref_ln(ln, t):
    return F.layer_norm(t, (D,), ln.weight, ln.bias, ln.eps)


def ref_compress(m, x, k, v, valid):
    """``P = softmax over positions of X W^P`` on ``valid`` positions; ``K_bar = P^T K``."""
    b, n, _ = x.shape
    logits = F.linear(x, m.dynamic_proj.proj.weight, m.dynamic_proj.proj.bias)
    logits = logits.view(b, n, HEADS, -1).permute(0, 2, 1, 3)
    p = torch.softmax(logits.masked_fill(~valid[:, None, :, None], -math.inf), dim=2)
    p_t = p.transpose(2, 3)
    return ref_ln(m.dual_ln.long, p_t @ k), ref_ln(m.dual_ln.long, p_t @ v)


def ref_attention(m, x, short_ok, long=None, bias=None):
    """Dense LS attention: ``short_ok [B|1, N, N]``, ``long = (K_bar, V_bar, ok [B|1, N, M])``."""
    b, n, _ = x.shape
    q, k, v = ref_heads(m, x)
    ks, vs = ref_ln(m.dual_ln.short, k), ref_ln(m.dual_ln.short, v)
    scores = q @ ks.transpose(2, 3) / math.sqrt(D)
    if bias is not None:
        scores = scores + bias
    scores = scores.masked_fill(~short_ok[:, None], -math.inf)
    values = vs
    if long is not None:
        kl, vl, long_ok = long
        sl = (q @ kl.transpose(2, 3) / math.sqrt(D)).masked_fill(~long_ok[:, None], -math.inf)
        scores, values = torch.cat([scores, sl], -1), torch.cat([vs, vl], 2)
    out = torch.softmax(scores, -1) @ values
    return F.linear(out.transpose(1, 2).reshape(b, n, C), m.proj.weight, m.proj.bias)


def window_1d(n, w):
    i, j = torch.arange(n)[:, None], torch.arange(n)[None]
    start = i // w * w
    return (j >= start - w // 2) & (j < start + w + w // 2)


def window_causal(n, w):
    i, j = torch.arange(n)[:, None], torch.arange(n)[None]
    return (j <= i) & (j > i - w)


def window_2d(h, w, ws):
    y, x = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    ty, tx = y // ws * ws, x // ws * ws
    rows = (y[None] >= ty[:, None] - ws // 2) & (y[None] < ty[:, None] + ws + ws // 2)
    cols = (x[None] >= tx[:, None] - ws // 2) & (x[None] < tx[:, None] + ws + ws // 2)
    return rows & cols


def ref_causal_long(m, x, k, v):
    """Per-segment dynamic projection; query t sees segment g iff (g + 1) l <= t."""
    n, seg = x.shape[1], m.segment_size
    kls, vls, ok = [], [], []
    for g, s0 in enumerate(range(0, n, seg)):
        valid = torch.zeros(x.shape[0], n, dtype=torch.bool)
        valid[:, s0:s0 + seg] = True
        kl, vl = ref_compress(m, x, k, v, valid)
        kls.append(kl)
        vls.append(vl)
        ok.append((torch.arange(n) >= (g + 1) * seg)[:, None].expand(n, m.dp_rank))
    return torch.cat(kls, 2), torch.cat(vls, 2), torch.cat(ok, 1)[None]


def dependence(fn, x):
    """``[N_out, N_in]`` bool: does output token i depend on input token j (autograd Jacobian)."""
    jac = torch.autograd.functional.jacobian(lambda t: fn(t[None])[0], x[0])
    return jac.abs().sum((1, 3)) > 0


# --------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize('n', [7, 12])
def test_1d_full_window_is_softmax_attention(n):
    m = make(LSAttention1d, window_size=2 * n, dp_rank=0)
    x = torch.randn(2, n, C, dtype=torch.float64)
    q, k, v = ref_heads(m, x)
    ks, vs = ref_ln(m.dual_ln.short, k), ref_ln(m.dual_ln.short, v)
    out = torch.softmax(q @ ks.transpose(2, 3) / math.sqrt(D), -1) @ vs
    expect = F.linear(out.transpose(1, 2).reshape(2, n, C), m.proj.weight, m.proj.bias)
    torch.testing.assert_close(m(x), expect)


def test_causal_full_window_is_causal_softmax_attention():
    n = 9
    m = make(CausalLSAttention1d, window_size=n, segment_size=4, dp_rank=0)
    x = torch.randn(2, n, C, dtype=torch.float64)
    q, k, v = ref_heads(m, x)
    ks, vs = ref_ln(m.dual_ln.short, k), ref_ln(m.dual_ln.short, v)
    scores = (q @ ks.transpose(2, 3) / math.sqrt(D)).masked_fill(
        ~torch.ones(n, n, dtype=torch.bool).tril(), -math.inf)
    out = torch.softmax(scores, -1) @ vs
    expect = F.linear(out.transpose(1, 2).reshape(2, n, C), m.proj.weight, m.proj.bias)
    torch.testing.assert_close(m(x), expect)


def test_2d_full_window_is_softmax_attention():
    h, w = 5, 7
    m = make(LSAttention2d, window_size=8, dp_rank=0)
    x = torch.randn(2, h * w, C, dtype=torch.float64)
    q, k, v = ref_heads(m, x)
    ks, vs = ref_ln(m.dual_ln.short, k), ref_ln(m.dual_ln.short, v)
    out = torch.softmax(q @ ks.transpose(2, 3) / math.sqrt(D), -1) @ vs
    expect = F.linear(out.transpose(1, 2).reshape(2, h * w, C), m.proj.weight, m.proj.bias)
    torch.testing.assert_close(m(x, (h, w)), expect)


@pytest.mark.parametrize('n,w,r', [(13, 4, 3), (16, 4, 2), (11, 3, 1)])
def test_1d_matches_dense_reference_with_padding(n, w, r):
    m = make(LSAttention1d, window_size=w, dp_rank=r)
    x = torch.randn(3, n, C, dtype=torch.float64)
    pad = torch.zeros(3, n, dtype=torch.bool)
    pad[1, n - 3:] = True
    pad[2, 2:5] = True
    _, k, v = ref_heads(m, x)
    long = (*ref_compress(m, x, k, v, ~pad), torch.ones(1, n, r, dtype=torch.bool))
    expect = ref_attention(m, x, window_1d(n, w)[None] & ~pad[:, None], long)
    torch.testing.assert_close(m(x, key_padding_mask=pad), expect)


@pytest.mark.parametrize('n,w,seg,r', [(13, 4, 3, 2), (16, 4, 4, 1), (10, 3, 5, 2)])
def test_causal_matches_dense_reference(n, w, seg, r):
    m = make(CausalLSAttention1d, window_size=w, segment_size=seg, dp_rank=r)
    x = torch.randn(2, n, C, dtype=torch.float64)
    _, k, v = ref_heads(m, x)
    expect = ref_attention(m, x, window_causal(n, w)[None], ref_causal_long(m, x, k, v))
    torch.testing.assert_close(m(x), expect)


@pytest.mark.parametrize('h,w,ws,rel', [(5, 7, 2, False), (6, 9, 4, True), (3, 3, 3, True)])
def test_2d_matches_dense_reference(h, w, ws, rel):
    r = 2
    m = make(LSAttention2d, window_size=ws, dp_rank=r, rel_pos_bias=rel)
    x = torch.randn(2, h * w, C, dtype=torch.float64)
    _, k, v = ref_heads(m, x)
    n = h * w
    long = (*ref_compress(m, x, k, v, torch.ones(2, n, dtype=torch.bool)),
            torch.ones(1, n, r, dtype=torch.bool))
    bias = None
    if rel:
        y, xx = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
        span, off = 2 * (ws + ws // 2) - 1, ws - 1 + ws // 2
        idx = (y[None] - y[:, None] + off) * span + (xx[None] - xx[:, None] + off)
        bias = m.rel_pos_table[idx.clamp(0, span * span - 1)].permute(2, 0, 1)
    expect = ref_attention(m, x, window_2d(h, w, ws)[None], long, bias)
    torch.testing.assert_close(m(x, (h, w)), expect)


@pytest.mark.parametrize('n,w', [(14, 4), (9, 3), (8, 8)])
def test_1d_receptive_field_is_segment_plus_half_window(n, w):
    m = make(LSAttention1d, window_size=w, dp_rank=0)
    dep = dependence(m, torch.randn(1, n, C, dtype=torch.float64))
    assert torch.equal(dep, window_1d(n, w))


def test_2d_receptive_field_is_tile_plus_halo():
    h, w, ws = 7, 6, 4
    m = make(LSAttention2d, window_size=ws, dp_rank=0, rel_pos_bias=True)
    dep = dependence(lambda t: m(t, (h, w)), torch.randn(1, h * w, C, dtype=torch.float64))
    assert torch.equal(dep, window_2d(h, w, ws))


def test_long_range_branch_sees_everything():
    m = make(LSAttention1d, window_size=2, dp_rank=1)
    assert dependence(m, torch.randn(1, 10, C, dtype=torch.float64)).all()


@pytest.mark.parametrize('n,w,seg', [(17, 4, 3), (16, 3, 4), (12, 2, 5)])
def test_causal_dependence_is_window_plus_finished_segments(n, w, seg):
    """Output t depends on the window (t - w, t] and on every token of a segment ending before t:
    nothing at or after a segment boundary that is not yet closed, nothing in the future."""
    m = make(CausalLSAttention1d, window_size=w, segment_size=seg, dp_rank=2)
    dep = dependence(m, torch.randn(1, n, C, dtype=torch.float64))
    t, j = torch.arange(n)[:, None], torch.arange(n)[None]
    assert not dep.triu(1).any()
    assert torch.equal(dep, window_causal(n, w) | (j // seg < t // seg))


def test_causal_prefix_outputs_do_not_change_when_extended():
    m = make(CausalLSAttention1d, window_size=4, segment_size=3, dp_rank=2)
    x = torch.randn(2, 19, C, dtype=torch.float64)
    for n in (5, 6, 12, 13):
        torch.testing.assert_close(m(x[:, :n]), m(x)[:, :n])


@pytest.mark.parametrize('w,r', [(4, 3), (5, 0), (16, 2)])
def test_1d_padding_invariance(w, r):
    m = make(LSAttention1d, dtype=torch.float32, window_size=w, dp_rank=r)
    x = torch.randn(2, 11, C)
    padded = torch.cat([x, 100 * torch.randn(2, 6, C)], 1)
    mask = torch.zeros(2, 17, dtype=torch.bool)
    mask[:, 11:] = True
    torch.testing.assert_close(m(padded, key_padding_mask=mask)[:, :11], m(x),
                               atol=1e-5, rtol=1e-5)


def _all_finite(module, x, out):
    out.float().square().sum().backward()
    grads = [x.grad] + [p.grad for p in module.parameters() if p.grad is not None]
    return bool(torch.isfinite(out).all()) and all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('r', [0, 2])
def test_no_nan_with_fully_padded_windows(dtype, r):
    m = make(LSAttention1d, dtype=torch.float32, window_size=4, dp_rank=r)
    x = torch.randn(3, 21, C, requires_grad=True)
    mask = torch.zeros(3, 21, dtype=torch.bool)
    mask[0, 6:] = True  # several windows with no real key at all
    mask[1] = True  # a fully padded row
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
        out = m(x, key_padding_mask=mask)
    assert _all_finite(m, x, out)
    if r == 0:  # windows without any real key output exactly zero (before the output bias)
        torch.testing.assert_close(out[1].float(), m.proj.bias.expand(21, C).detach(),
                                   atol=1e-2, rtol=0)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_no_nan_causal_and_2d(dtype):
    causal = make(CausalLSAttention1d, dtype=torch.float32, window_size=3, segment_size=4,
                  dp_rank=1)
    two_d = make(LSAttention2d, dtype=torch.float32, window_size=4, dp_rank=2, rel_pos_bias=True)
    for fn, module, n in [(causal, causal, 10), (lambda t: two_d(t, (5, 3)), two_d, 15)]:
        x = torch.randn(2, n, C, requires_grad=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = fn(x)
        assert out.dtype == dtype
        assert _all_finite(module, x, out)


def test_bf16_autocast_close_to_fp32():
    m = make(LSAttention2d, dtype=torch.float32, window_size=4, dp_rank=2)
    x = torch.randn(2, 30, C)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = m(x, (5, 6))
    torch.testing.assert_close(low.float(), m(x, (5, 6)), atol=5e-2, rtol=5e-2)


def test_gradcheck_float64():
    pad = torch.tensor([[False] * 5 + [True] * 2, [False] * 7])
    cases = [
        (make(LSAttention1d, window_size=2, dp_rank=2), lambda m, t: m(t, key_padding_mask=pad), 7),
        (make(CausalLSAttention1d, window_size=3, segment_size=2, dp_rank=1), lambda m, t: m(t), 7),
        (make(LSAttention2d, window_size=2, dp_rank=1, rel_pos_bias=True),
         lambda m, t: m(t, (3, 2)), 6),
    ]
    for module, call, n in cases:
        x = torch.randn(2, n, C, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t, m=module, f=call: f(m, t), (x,))


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        LSAttention1d(embed_dims=10, num_heads=3, window_size=4, dp_rank=1)
    with pytest.raises(ValueError):
        LSAttention2d(embed_dims=8, num_heads=2, window_size=0, dp_rank=1)
    with pytest.raises(ValueError):
        LSAttention2d(embed_dims=8, num_heads=2, window_size=2, dp_rank=1)(
            torch.randn(1, 5, 8), (2, 3))


CFGS = [
    dict(type='LSAttention1d', embed_dims=C, num_heads=HEADS, window_size=4, dp_rank=2),
    dict(type='CausalLSAttention1d', embed_dims=C, num_heads=HEADS, window_size=4,
         segment_size=4, dp_rank=1),
    dict(type='LSAttention2d', embed_dims=C, num_heads=HEADS, window_size=4, dp_rank=2,
         rel_pos_bias=True),
]


@pytest.mark.parametrize('cfg', CFGS, ids=lambda c: c['type'])
def test_build_from_registries(cfg):
    classes = dict(LSAttention1d=LSAttention1d, CausalLSAttention1d=CausalLSAttention1d,
                   LSAttention2d=LSAttention2d)
    assert isinstance(MODELS.build(dict(cfg)), classes[cfg['type']])
    pytest.importorskip('mmcv')
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    for registry in (SEG_MODELS, DET_MODELS):
        assert isinstance(registry.build(dict(cfg)), classes[cfg['type']])
    two_d = MODELS.build(dict(CFGS[2], embed_dims=16, num_heads=4))  # how MiT builds it
    assert two_d(torch.randn(1, 12, 16), (3, 4)).shape == (1, 12, 16)


def test_dual_layernorm_keeps_branches_separate():
    m = make(LSAttention1d, window_size=2, dp_rank=2)
    x = torch.randn(1, 9, C, dtype=torch.float64)
    before = m(x)
    with torch.no_grad():
        m.dual_ln.long.bias.add_(1.)
    assert not torch.allclose(m(x), before)  # the long-range K/V use LN_L ...
    with torch.no_grad():
        m.dual_ln.long.bias.sub_(1.)
        m.dual_ln.short.bias.add_(1.)
    _, k, _ = ref_heads(m, x)
    kl = F.layer_norm(k, (D,), m.dual_ln.long.weight, m.dual_ln.long.bias, m.dual_ln.long.eps)
    assert not torch.allclose(ref_ln(m.dual_ln.short, k), kl)  # ... and LN_S is a different one
    assert not torch.allclose(m(x), before)
