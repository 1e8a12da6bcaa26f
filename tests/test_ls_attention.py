"""Long-Short attention modules against dense references of the OFFICIAL equations.

The references below are written from the official code's equations (NVIDIA/transformer-ls:
``lra/attention_transformer_ls.py``, ``imagenet/models/layers/transformer_ls.py``,
``autoregressive/model_lib/layer.py``), with full N x N score matrices, explicit masks and one
softmax; they share nothing with the modules but the weights:

* dual LayerNorm over all C channels before the head split;
* 1D / 2D: the dynamic projection compresses the LN_S-normalised keys/values, then LN_L;
* causal: it compresses the raw keys/values per segment, then LN_L; a Transformer-XL memory whose
  segments are compressed per head-sized slice of the raw memory input, then projected;
  Transformer-XL relative-position terms;
* 2D: global tokens (keys LN_S-normalised; a global query attends to the global keys and to the
  map queries' outputs), relative position bias, halo max(w // 2, 1).

The modules have two paths, both checked against the same references (fixture ``path``): the
PyTorch autograd one and the fused CPU kernel; outputs and the gradients of the input and of every
parameter (the references differentiated by autograd; the kernel's 1D / 2D backward, the causal
module's training on the autograd path).
"""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from mmseg_ext.models.layers import CausalLSAttention1d, LSAttention1d, LSAttention2d
from mmseg_ext.models.layers import ls_attention_kernel as kernel

C = 16
TOL = dict(atol=1e-5, rtol=0)  # fp32, as the acceptance criterion


def make(cls, heads, dtype=torch.float32, seed=0, **kwargs):
    torch.manual_seed(seed)
    m = cls(embed_dims=C, num_heads=heads, **kwargs).to(dtype).eval()
    with torch.no_grad():  # every weight non-trivial, so that a wrong assignment shows
        for p in m.parameters():
            p.normal_(0, 0.3)
        for ln in (m.dual_ln.short, m.dual_ln.long):
            ln.weight.uniform_(0.5, 1.5)
    return m


@pytest.fixture(params=['autograd', 'kernel'])
def path(request, monkeypatch):
    """``path(fn)`` runs ``fn()`` on one forward path and checks that this path served it: the
    PyTorch autograd one (kernel switched off, gradients enabled) or the fused CPU kernel (under
    ``no_grad``). ``path.grads(m, x, fn, ref)`` checks the gradients of ``fn`` on this path
    against those of the reference ``ref`` (see :func:`check_grads`)."""
    calls = []
    for name in ('window_attention_1d', 'window_attention_2d', 'causal_attention'):
        real = getattr(kernel, name)
        monkeypatch.setattr(kernel, name, lambda *a, _real=real: calls.append(1) or _real(*a))
    if request.param == 'kernel' and kernel.library() is None:
        pytest.fail('the fused LS attention kernel could not be built (see the warning)')
    if request.param == 'autograd':
        monkeypatch.setattr(kernel, '_library', False)

    def run(fn):
        calls.clear()
        with torch.set_grad_enabled(request.param == 'autograd'):
            out = fn()
        assert bool(calls) == (request.param == 'kernel'), f'not served by the {request.param} path'
        return out

    def grads(m, x, fn, ref, kernel_backward=True):
        """``kernel_backward``: the kernel path trains on the kernel (1D, 2D); the causal
        kernel is forward-only, its training takes the autograd path."""
        calls.clear()
        got = gradients(m, x, fn)
        served = request.param == 'kernel' and kernel_backward
        assert bool(calls) == served, f'training not served by the {request.param} path'
        check_grads(got, gradients(m, x, ref))
    run.grads = grads
    return run


def gradients(m, x, fn):
    """Gradients of a fixed random weighting of ``fn(x)`` w.r.t. ``x`` and every parameter of
    ``m`` (None: no gradient)."""
    x = x.clone().requires_grad_()
    m.zero_grad(set_to_none=True)
    with torch.enable_grad():
        out = fn(x)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        (out * weight).sum().backward()
    return {'x': x.grad, **{name: p.grad for name, p in m.named_parameters()}}


def check_grads(got, expected):
    """Equal to 1e-4 relative to each tensor's largest entry (at least 1: some gradients are 0
    up to rounding, e.g. the dynamic projection's bias, a constant under its softmax)."""
    assert got.keys() == expected.keys()
    for name, ref in expected.items():
        assert (got[name] is None) == (ref is None), f'gradient of {name}'
        if ref is not None:
            torch.testing.assert_close(got[name], ref, rtol=1e-4,
                                       atol=1e-4 * max(ref.abs().max().item(), 1.),
                                       msg=lambda msg, name=name: f'gradient of {name}: {msg}')


# ------------------------------------------------------------- dense references (official)
def ln(norm, t):
    """LayerNorm over all C channels (official dual LN), before any head split."""
    return F.layer_norm(t, (C,), norm.weight, norm.bias, norm.eps)


def project(m, x):
    wq, wk, wv = m.qkv.weight.split(C)
    bq, bk, bv = (None, None, None) if m.qkv.bias is None else m.qkv.bias.split(C)
    return F.linear(x, wq, bq), F.linear(x, wk, bk), F.linear(x, wv, bv)


def heads(t, h):
    return t.unflatten(-1, (h, -1)).transpose(-2, -3)  # [..., N, C] -> [..., h, N, d]


def compress(m, x, t, valid):
    """``LN_L(concat_i P_i^T T_i)``: ``P`` = softmax over the valid positions of ``x W^P``."""
    h, r = m.num_heads, m.dp_rank
    logits = F.linear(x, m.dynamic_proj.proj.weight, m.dynamic_proj.proj.bias)
    # finite mask: a fully padded sequence keeps finite gradients (its outputs are masked)
    logits = logits.unflatten(-1, (h, r)).masked_fill(~valid[..., None, None], -1e30)
    p = logits.softmax(-3)  # [B, N, h, r]
    bar = torch.einsum('bnhr,bnhd->brhd', p, t.unflatten(-1, (h, -1)))
    return ln(m.dual_ln.long, bar.flatten(2))  # [B, r, C]


def attend(m, q, keys, values, allowed, bias=0.):
    """One softmax over concatenated key sets: ``q [B, N, C]``, ``keys``/``values`` lists of
    ``[B, M_i, C]``, ``allowed`` list of bool ``[B|1, N, M_i]``, additive ``bias`` on the
    concatenated scores. Returns ``[B, N, C]`` per-head outputs (before the projection)."""
    h = m.num_heads
    d = C // h
    qh = heads(q, h) / math.sqrt(d)
    # a large finite mask: a padded query that sees no key (its output is masked later) keeps
    # a finite gradient, -inf would make it NaN
    scores = torch.cat([(qh @ heads(k, h).transpose(-1, -2)).masked_fill(~a[:, None], -1e30)
                        for k, a in zip(keys, allowed)], -1) + bias
    out = scores.softmax(-1) @ torch.cat([heads(v, h) for v in values], -2)
    return out.transpose(1, 2).flatten(2)


def window_1d(n, w):
    e = max(w // 2, 1)
    t, j = torch.arange(n)[:, None], torch.arange(n)[None]
    start = t // w * w
    return (j >= start - e) & (j < start + w + e)


def window_2d(h, w, ws):
    e = max(ws // 2, 1)
    y, x = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    ty, tx = y // ws * ws, x // ws * ws
    rows = (y[None] >= ty[:, None] - e) & (y[None] < ty[:, None] + ws + e)
    cols = (x[None] >= tx[:, None] - e) & (x[None] < tx[:, None] + ws + e)
    return rows & cols


def ref_1d(m, x, pad=None, cls=None):
    b, n, _ = x.shape
    valid = torch.ones(b, n, dtype=torch.bool) if pad is None else ~pad
    q, k, v = project(m, x)
    ks, vs = ln(m.dual_ln.short, k), ln(m.dual_ln.short, v)
    keys, values = [ks], [vs]
    allowed = [window_1d(n, m.window_size)[None] & valid[:, None]]
    if m.dp_rank:
        keys.append(compress(m, x, ks, valid))
        values.append(compress(m, x, vs, valid))
        allowed.append(torch.ones(1, n, m.dp_rank, dtype=torch.bool))
    if cls is not None:  # official cls_embed: W_k / W_v of the raw CLS, then dual_ln_s (= LN_L)
        _, k_cls, v_cls = project(m, cls)
        keys.append(ln(m.dual_ln.long, k_cls))
        values.append(ln(m.dual_ln.long, v_cls))
        allowed.append(torch.ones(1, n, cls.shape[1], dtype=torch.bool))
    out = attend(m, q, keys, values, allowed).masked_fill(~valid[..., None], 0)
    return F.linear(out, m.proj.weight, m.proj.bias)


def ref_rel_pos_bias(m, hh, ww):
    """``[h, HW, HW]`` bias: table row ``(dy + w + e - 1) * span + (dx + w + e - 1)`` for the
    offset ``(dy, dx) = key - query`` (one row per offset)."""
    ws, e = m.window_size, max(m.window_size // 2, 1)
    y, x = torch.arange(hh).repeat_interleave(ww), torch.arange(ww).repeat(hh)
    span, off = 2 * (ws + e) - 1, ws + e - 1
    dy, dx = y[None] - y[:, None], x[None] - x[:, None]
    idx = ((dy + off) * span + dx + off).clamp(0, span * span - 1)
    return m.rel_pos_table[idx].permute(2, 0, 1)


def ref_2d(m, x, hh, ww):
    b = x.shape[0]
    g, n = m.num_global_tokens, hh * ww
    q, k, v = project(m, x)
    ks, vs = ln(m.dual_ln.short, k), ln(m.dual_ln.short, v)
    keys, values = [ks[:, g:]], [vs[:, g:]]
    allowed = [window_2d(hh, ww, m.window_size)[None]]
    bias = 0.
    if m.rel_pos_table is not None:
        bias = F.pad(ref_rel_pos_bias(m, hh, ww), (0, m.dp_rank + g))
    if m.dp_rank:
        valid = torch.ones(b, n, dtype=torch.bool)
        keys.append(compress(m, x[:, g:], ks[:, g:], valid))
        values.append(compress(m, x[:, g:], vs[:, g:], valid))
        allowed.append(torch.ones(1, n, m.dp_rank, dtype=torch.bool))
    if g:
        keys.append(ks[:, :g])
        values.append(vs[:, :g])
        allowed.append(torch.ones(1, n, g, dtype=torch.bool))
    out = attend(m, q[:, g:], keys, values, allowed, bias)
    if g:  # global queries: the global keys, then the map outputs as keys and values
        everything = torch.ones(1, g, g + n, dtype=torch.bool)
        out_g = attend(m, q[:, :g], [torch.cat([ks[:, :g], out], 1)],
                       [torch.cat([vs[:, :g], out], 1)], [everything])
        out = torch.cat([out_g, out], 1)
    return F.linear(out, m.proj.weight, m.proj.bias)


def sinusoid(p):
    """Transformer-XL: ``[sin(p f_i), cos(p f_i)]``, ``f_i = 1 / 10000^(2 i / C)``."""
    f = 1 / 10000 ** (torch.arange(0, C, 2, dtype=torch.float64) / C)
    a = p.double()[:, None] * f
    return torch.cat([a.sin(), a.cos()], -1).float()


def ref_causal(m, x, memory=None):
    """Official ChunkedLSAttention: positions ``-M..-1`` are the memory, ``0..N-1`` are ``x``."""
    b, n, _ = x.shape
    hd, w, seg, r = m.num_heads, m.window_size, m.segment_size, m.dp_rank
    d = C // hd
    mem_len = 0 if memory is None else memory.shape[1]
    z = x if memory is None else torch.cat([memory, x], 1)
    q = project(m, x)[0]
    _, k, v = project(m, z)
    ks, vs = ln(m.dual_ln.short, k), ln(m.dual_ln.short, v)
    t, j = torch.arange(n)[:, None], torch.arange(-mem_len, n)[None]
    keys, values, allowed = [ks], [vs], [((j <= t) & (j > t - w))[None]]
    bias = [torch.zeros(b, hd, n, n + mem_len)]
    qh = heads(q, hd) / math.sqrt(d)
    if m.rel_pos:
        rel = heads(F.linear(sinusoid((t - j).clamp(min=0).flatten()), m.rel_pos_proj.weight), hd)
        rel = rel.view(hd, n, n + mem_len, d)
        content = (m.rel_content_bias[:, None] @ heads(ks, hd).transpose(-1, -2))
        position = ((qh + m.rel_pos_bias[:, None])[..., None, :] * rel).sum(-1)
        bias = [content + position]
    if r:
        comp_k, comp_v, seg_of = [], [], []
        for s0 in range(-mem_len, n, seg):  # segment c = s0 // seg (negative: memory)
            part = torch.zeros(b, n + mem_len, dtype=torch.bool)
            part[:, s0 + mem_len:s0 + mem_len + seg] = True
            if s0 < 0:  # official memory: head i's P_i compresses input channels of slice i
                logits = F.linear(z, m.dynamic_proj.proj.weight, m.dynamic_proj.proj.bias)
                p = logits.unflatten(-1, (hd, r)).masked_fill(~part[..., None, None], -math.inf)
                bar = torch.einsum('bnhr,bnhd->brhd', p.softmax(1), z.unflatten(-1, (hd, d)))
                _, bk, bv = project(m, bar.flatten(2))
                comp_k.append(ln(m.dual_ln.long, bk))
                comp_v.append(ln(m.dual_ln.long, bv))
            else:  # in-block: P^T of the raw projected keys of each head
                comp_k.append(compress(m, z, k, part))
                comp_v.append(compress(m, z, v, part))
            seg_of += [s0 // seg] * r
        seg_of = torch.tensor(seg_of)
        keys.append(torch.cat(comp_k, 1))
        values.append(torch.cat(comp_v, 1))
        allowed.append((seg_of[None] < (t // seg))[None])
        long_bias = torch.zeros(b, hd, n, len(seg_of))
        if m.rel_pos:
            slot = torch.arange(len(seg_of)) % r
            p_idx = (r * (t // seg - seg_of[None]) - 1 - slot[None]).clamp(min=0)
            rel = F.linear(sinusoid(p_idx.flatten()), m.rel_pos_proj_long.weight,
                           m.rel_pos_proj_long.bias)
            rel = heads(rel, hd).view(hd, n, len(seg_of), d)
            long_bias = (qh[..., None, :] * rel).sum(-1)
        bias.append(long_bias)
    out = attend(m, q, keys, values, allowed, torch.cat(bias, -1))
    return F.linear(out, m.proj.weight, m.proj.bias)


# ------------------------------------------------------------------------ official math
@pytest.mark.parametrize('h', [2, 4])
@pytest.mark.parametrize('n,w,r', [(13, 4, 3), (16, 1, 2), (11, 3, 0)])
def test_1d_matches_official_equations(h, n, w, r, path):
    m = make(LSAttention1d, h, window_size=w, dp_rank=r)
    x = torch.randn(3, n, C)
    pad = torch.zeros(3, n, dtype=torch.bool)
    pad[1, n - 3:] = True
    pad[2, 2:5] = True
    torch.testing.assert_close(path(lambda: m(x, key_padding_mask=pad)), ref_1d(m, x, pad), **TOL)
    path.grads(m, x, lambda x: m(x, key_padding_mask=pad), lambda x: ref_1d(m, x, pad))


@pytest.mark.parametrize('h', [2, 4])
@pytest.mark.parametrize('n,w,r', [(13, 4, 3), (11, 3, 0)])
def test_1d_extra_keys_match_official_cls_embed(h, n, w, r, path):
    """Official LRA last block: every token also attends to LN_L(W_k cls), LN_L(W_v cls)."""
    m = make(LSAttention1d, h, window_size=w, dp_rank=r)
    x, cls = torch.randn(3, n, C), torch.randn(3, 1, C)
    pad = torch.zeros(3, n, dtype=torch.bool)
    pad[1, n - 3:] = True
    out = path(lambda: m(x, key_padding_mask=pad, extra=cls))
    torch.testing.assert_close(out, ref_1d(m, x, pad, cls), **TOL)
    assert (out - path(lambda: m(x, key_padding_mask=pad))).abs().amax() > 1e-2  # CLS is seen
    path.grads(m, cls, lambda c: m(x, key_padding_mask=pad, extra=c),
               lambda c: ref_1d(m, x, pad, c))


@pytest.mark.parametrize('h', [2, 4])
@pytest.mark.parametrize('hw,ws,r,rel,g', [((5, 7), 2, 2, False, 1), ((6, 9), 4, 3, True, 1),
                                           ((4, 4), 1, 0, True, 2), ((3, 3), 3, 2, True, 0)])
def test_2d_matches_official_equations(h, hw, ws, r, rel, g, path):
    m = make(LSAttention2d, h, window_size=ws, dp_rank=r, rel_pos_bias=rel, num_global_tokens=g)
    x = torch.randn(2, g + hw[0] * hw[1], C)
    torch.testing.assert_close(path(lambda: m(x, hw)), ref_2d(m, x, *hw), **TOL)
    path.grads(m, x, lambda x: m(x, hw), lambda x: ref_2d(m, x, *hw))


@pytest.mark.parametrize('case', ['1d', '2d', 'causal'])
def test_kernel_blocks_and_channel_tails(case, path):
    """More than 64 queries (1D, 2D) or keys (causal) per window, head dims not a multiple of 4
    and a fully padded sequence, segments of 6 (causal queries in pairs) and more than 64
    compressed keys, on both paths; the kernel's result is the same on 1 or 2 threads."""
    if case == '1d':
        m = make(LSAttention1d, 8, window_size=70, dp_rank=3)  # d = 2
        x = torch.randn(3, 150, C)
        pad = torch.zeros(3, 150, dtype=torch.bool)
        pad[1] = True
        pad[2, 100:] = True
        out = path(lambda: m(x, key_padding_mask=pad))
        torch.testing.assert_close(out, ref_1d(m, x, pad), **TOL)
        torch.testing.assert_close(out[1], m.proj.bias.expand(150, C).detach(), **TOL)
        path.grads(m, x, lambda x: m(x, key_padding_mask=pad), lambda x: ref_1d(m, x, pad))
        fn = lambda: m(x, key_padding_mask=pad)  # noqa: E731
    elif case == '2d':
        m = make(LSAttention2d, 8, window_size=9, dp_rank=2, rel_pos_bias=True,
                 num_global_tokens=1)
        x = torch.randn(2, 1 + 11 * 10, C)
        torch.testing.assert_close(path(lambda: m(x, (11, 10))), ref_2d(m, x, 11, 10), **TOL)
        path.grads(m, x, lambda x: m(x, (11, 10)), lambda x: ref_2d(m, x, 11, 10))
        fn = lambda: m(x, (11, 10))  # noqa: E731
    elif case == 'causal':
        m = make(CausalLSAttention1d, 8, window_size=70, segment_size=6, dp_rank=3,
                 rel_pos=True)
        x, memory = torch.randn(2, 130, C), torch.randn(2, 12, C)
        torch.testing.assert_close(path(lambda: m(x, memory)), ref_causal(m, x, memory), **TOL)
        path.grads(m, x, lambda x: m(x, memory), lambda x: ref_causal(m, x, memory),
                   kernel_backward=False)
        fn = lambda: m(x, memory)  # noqa: E731
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = path(fn)
        torch.set_num_threads(2)
        assert torch.equal(path(fn), one)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize('h', [2, 4])
@pytest.mark.parametrize('n,w,seg,r,mem,rel', [(13, 4, 3, 2, 6, True), (16, 4, 4, 1, 0, True),
                                               (10, 3, 5, 2, 10, False), (9, 8, 4, 0, 4, True)])
def test_causal_matches_official_equations(h, n, w, seg, r, mem, rel, path):
    m = make(CausalLSAttention1d, h, window_size=w, segment_size=seg, dp_rank=r, rel_pos=rel,
             qkv_bias=rel, proj_bias=not rel)
    x = torch.randn(2, n, C)
    memory = torch.randn(2, mem, C) if mem else None
    torch.testing.assert_close(path(lambda: m(x, memory)), ref_causal(m, x, memory), **TOL)
    path.grads(m, x, lambda x: m(x, memory), lambda x: ref_causal(m, x, memory),
               kernel_backward=False)


def test_layernorm_is_over_all_channels_before_the_head_split():
    """C affine parameters per branch; per-head normalisation would give another result."""
    m = make(LSAttention1d, 4, window_size=2, dp_rank=2)
    assert m.dual_ln.short.weight.shape == m.dual_ln.long.weight.shape == (C,)
    x = torch.randn(1, 6, C)
    k = project(m, x)[1]
    per_head = F.layer_norm(k.unflatten(-1, (4, -1)), (C // 4,)).flatten(2)
    assert not torch.allclose(m.dual_ln.short(k), per_head, atol=1e-3)


# ------------------------------------------------------------------------------ properties
def dependence(fn, x):
    """``[N_out, N_in]`` bool: does output token i depend on input token j (autograd Jacobian)."""
    jac = torch.autograd.functional.jacobian(lambda t: fn(t[None])[0], x[0])
    return jac.abs().sum((1, 3)) > 0


@pytest.mark.parametrize('n,w', [(14, 4), (9, 3), (7, 1)])
def test_1d_receptive_field_is_segment_plus_halo(n, w):
    m = make(LSAttention1d, 2, dtype=torch.float64, window_size=w, dp_rank=0)
    assert torch.equal(dependence(m, torch.randn(1, n, C, dtype=torch.float64)),
                       window_1d(n, w))


def test_2d_receptive_field_is_tile_plus_halo_and_global_tokens_see_all():
    hh, ww, ws = 7, 6, 4
    m = make(LSAttention2d, 2, dtype=torch.float64, window_size=ws, dp_rank=0,
             rel_pos_bias=True, num_global_tokens=1)
    dep = dependence(lambda t: m(t, (hh, ww)), torch.randn(1, 1 + hh * ww, C, dtype=torch.float64))
    assert dep[0].all() and dep[:, 0].all()  # the global token sees, and is seen by, everyone
    assert torch.equal(dep[1:, 1:], window_2d(hh, ww, ws))


@pytest.mark.parametrize('n,w,seg,mem', [(17, 4, 3, 6), (12, 2, 4, 0)])
def test_causal_dependence_is_memory_window_and_finished_segments(n, w, seg, mem):
    m = make(CausalLSAttention1d, 2, dtype=torch.float64, window_size=w, segment_size=seg,
             dp_rank=2, rel_pos=True)
    z = torch.randn(1, mem + n, C, dtype=torch.float64)
    dep = dependence(lambda t: m(t[:, mem:], t[:, :mem] if mem else None), z)
    t, j = torch.arange(n)[:, None], torch.arange(-mem, n)[None]
    assert not (dep & (j > t)).any()  # nothing in the future
    assert torch.equal(dep, ((j <= t) & (j > t - w)) | (j < 0) | (j // seg < t // seg))


def test_causal_prefix_outputs_do_not_change_when_extended():
    m = make(CausalLSAttention1d, 2, window_size=4, segment_size=3, dp_rank=2, rel_pos=True)
    x, memory = torch.randn(2, 19, C), torch.randn(2, 6, C)
    for n in (5, 6, 12, 13):
        torch.testing.assert_close(m(x[:, :n], memory), m(x, memory)[:, :n], **TOL)


def test_causal_query_groups_and_memory_compression():
    """Query groups are exact; 'keys' memory compression equals the official 'input' one only
    with one head."""
    x, memory = torch.randn(2, 50, C), torch.randn(2, 9, C)
    m = make(CausalLSAttention1d, 2, window_size=4, segment_size=3, dp_rank=2, rel_pos=True)
    full = m(x, memory)
    m.query_group = 12
    torch.testing.assert_close(m(x, memory), full, **TOL)
    m.memory_compression = 'keys'
    assert not torch.allclose(m(x, memory), full, atol=1e-3)
    one_head = make(CausalLSAttention1d, 1, window_size=4, segment_size=3, dp_rank=2)
    official = one_head(x, memory)
    one_head.memory_compression = 'keys'
    torch.testing.assert_close(one_head(x, memory), official, **TOL)


@pytest.mark.parametrize('w,r', [(4, 3), (5, 0), (16, 2)])
def test_1d_padding_invariance(w, r, path):
    m = make(LSAttention1d, 2, window_size=w, dp_rank=r)
    x = torch.randn(2, 11, C)
    padded = torch.cat([x, 100 * torch.randn(2, 6, C)], 1)
    mask = torch.zeros(2, 17, dtype=torch.bool)
    mask[:, 11:] = True
    torch.testing.assert_close(path(lambda: m(padded, key_padding_mask=mask))[:, :11],
                               path(lambda: m(x)), **TOL)


def _all_finite(module, x, out):
    out.float().square().sum().backward()
    grads = [x.grad] + [p.grad for p in module.parameters() if p.grad is not None]
    return bool(torch.isfinite(out).all()) and all(bool(torch.isfinite(g).all()) for g in grads)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_no_nan_with_fully_padded_windows_and_rows(dtype):
    for r in (0, 2):
        m = make(LSAttention1d, 2, window_size=4, dp_rank=r)
        x = torch.randn(3, 21, C, requires_grad=True)
        mask = torch.zeros(3, 21, dtype=torch.bool)
        mask[0, 6:] = True  # several windows with no real key at all
        mask[1] = True  # a fully padded row
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = m(x, key_padding_mask=mask)
        assert _all_finite(m, x, out)
        # padded positions output the projection's bias, as the official module
        torch.testing.assert_close(out[1].float(), m.proj.bias.expand(21, C).detach(),
                                   atol=1e-2 if dtype == torch.bfloat16 else 1e-6, rtol=0)


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_no_nan_causal_and_2d(dtype):
    causal = make(CausalLSAttention1d, 2, window_size=3, segment_size=4, dp_rank=1, rel_pos=True)
    two_d = make(LSAttention2d, 2, window_size=4, dp_rank=2, rel_pos_bias=True,
                 num_global_tokens=1)
    memory = torch.randn(2, 8, C)
    for fn, module, n in [(lambda t: causal(t, memory), causal, 10),
                          (lambda t: two_d(t, (5, 3)), two_d, 16)]:
        x = torch.randn(2, n, C, requires_grad=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            out = fn(x)
        assert out.dtype == dtype
        assert _all_finite(module, x, out)


def test_bf16_autocast_close_to_fp32():
    m = make(LSAttention2d, 2, window_size=4, dp_rank=2)
    x = torch.randn(2, 30, C)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        low = m(x, (5, 6))
    torch.testing.assert_close(low.float(), m(x, (5, 6)), atol=5e-2, rtol=5e-2)


def test_gradcheck_float64():
    pad = torch.tensor([[False] * 5 + [True] * 2])
    causal = make(CausalLSAttention1d, 2, dtype=torch.float64, window_size=3, segment_size=2,
                  dp_rank=1, rel_pos=True)
    memory = torch.randn(1, 4, C, dtype=torch.float64)
    cases = [
        (make(LSAttention1d, 2, dtype=torch.float64, window_size=2, dp_rank=2),
         lambda m, t: m(t, key_padding_mask=pad), 7),
        (causal, lambda m, t: m(t, memory), 5),
        (make(LSAttention2d, 2, dtype=torch.float64, window_size=2, dp_rank=1, rel_pos_bias=True,
              num_global_tokens=1), lambda m, t: m(t, (3, 2)), 7),
    ]
    for module, call, n in cases:
        x = torch.randn(1, n, C, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda t, m=module, f=call: f(m, t), (x,))


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match='divisible'):
        LSAttention1d(embed_dims=10, num_heads=3, window_size=4, dp_rank=1)
    with pytest.raises(ValueError, match='window_size'):
        LSAttention2d(embed_dims=8, num_heads=2, window_size=0, dp_rank=1)
    with pytest.raises(ValueError, match='hw_shape'):
        LSAttention2d(embed_dims=8, num_heads=2, window_size=2, dp_rank=1)(
            torch.randn(1, 5, 8), (2, 3))
    with pytest.raises(ValueError, match='num_global_tokens=1 need 7'):
        LSAttention2d(embed_dims=8, num_heads=2, window_size=2, dp_rank=1, num_global_tokens=1)(
            torch.randn(1, 6, 8), (2, 3))
    with pytest.raises(ValueError, match=r'key_padding_mask of shape \(2, 5\)'):
        LSAttention1d(8, 2, 2, 1)(torch.randn(1, 5, 8), torch.zeros(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r'extra of shape \(1, 8\)'):
        LSAttention1d(8, 2, 2, 1)(torch.randn(1, 5, 8), extra=torch.randn(1, 8))
    with pytest.raises(ValueError, match=r'memory of shape \(2, 4, 8\)'):
        CausalLSAttention1d(8, 2, 2, 4, 1)(torch.randn(1, 5, 8), torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match='segment_size=4'):
        CausalLSAttention1d(8, 2, 2, 4, 1)(torch.randn(1, 5, 8), torch.randn(1, 6, 8))


CFGS = [
    dict(type='LSAttention1d', embed_dims=C, num_heads=2, window_size=4, dp_rank=2),
    dict(type='CausalLSAttention1d', embed_dims=C, num_heads=2, window_size=4,
         segment_size=4, dp_rank=1, rel_pos=True),
    dict(type='LSAttention2d', embed_dims=C, num_heads=2, window_size=4, dp_rank=2,
         rel_pos_bias=True, num_global_tokens=1),
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
    two_d = MODELS.build(dict(type='LSAttention2d', embed_dims=16, num_heads=4, window_size=4,
                              dp_rank=2, rel_pos_bias=True))  # how MiT builds it
    assert two_d(torch.randn(1, 12, 16), (3, 4)).shape == (1, 12, 16)
