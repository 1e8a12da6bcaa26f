"""When the fused CPU kernel of the LS attention windows serves, how it is built, its ops.

Its numbers (outputs and gradients) are checked against the official equations in
tests/test_ls_attention.py (fixture ``path``); here: it serves 1D / 2D training and every call
that needs no gradient, a machine without a compiler (or with the kernel switched off) gets the
autograd path with the same result, the ops check their arguments and trace through
``torch.export`` / ``torch.compile``.
"""
import pytest
import torch

from mmseg_ext.models.layers import CausalLSAttention1d, LSAttention1d, LSAttention2d
from mmseg_ext.models.layers import ls_attention_kernel as kernel


@pytest.fixture
def calls(monkeypatch):
    """The names of the kernel functions called while the test runs."""
    made = []
    for name in ('window_attention_1d', 'window_attention_2d', 'causal_attention', 'layer_norm_'):
        real = getattr(kernel, name)
        monkeypatch.setattr(kernel, name,
                            lambda *a, _real=real, _name=name: made.append(_name) or _real(*a))
    return made


def modules():
    torch.manual_seed(0)
    return [(LSAttention1d(16, 2, 4, 2).eval(), (torch.randn(2, 13, 16),)),
            (LSAttention2d(16, 2, 2, 2, rel_pos_bias=True, num_global_tokens=1).eval(),
             (torch.randn(2, 1 + 15, 16), (3, 5))),
            (CausalLSAttention1d(16, 2, 4, 4, 1, rel_pos=True).eval(),
             (torch.randn(2, 13, 16), torch.randn(2, 8, 16)))]


def test_kernel_serves_1d_2d_training_and_forwards_without_gradients(calls):
    assert kernel.library() is not None
    for m, args in modules():
        calls.clear()
        with torch.no_grad():
            m(*args)
        with torch.inference_mode():
            m(*args)
        causal = isinstance(m, CausalLSAttention1d)
        ln_s = 0 if causal else 1  # the 1D / 2D LN_S in place
        assert len(calls) == 2 * (1 + ln_s)
        attention = calls[-1]
        calls.clear()
        m(*args)  # gradients of the weights
        x = args[0].clone().requires_grad_()
        m.requires_grad_(False)
        m(x, *args[1:])  # frozen module, gradient of the input
        m.dual_ln.short.requires_grad_(True)
        m(*args).sum().backward()  # only LN_S trains: its gradient must not be lost
        assert m.dual_ln.short.weight.grad is not None
        m.requires_grad_(True)
        # 1D / 2D train on the kernel's backward (LN_S not in place); causal: forward-only kernel
        assert calls == ([] if causal else [attention] * 3)
        calls.clear()
        with torch.no_grad():
            m.train()
            m.attn_drop = 0.1
            m(*args)  # attention dropout
            m.attn_drop = 0.
            m.double()(*(a.double() if torch.is_tensor(a) else a for a in args))  # fp64
            m.float().eval()
        assert calls == ['layer_norm_'] * ln_s  # LN_S does not mind the dropout


@pytest.mark.parametrize('switch_off', [True, False])
def test_without_the_kernel_the_autograd_path_serves(switch_off, monkeypatch, tmp_path, calls):
    results = []
    for m, args in modules():
        with torch.no_grad():
            results.append(m(*args))
    assert len(calls) == 5  # 3 attention + 2 LN_S
    calls.clear()
    monkeypatch.setattr(kernel, '_library', None)  # not built yet in this process
    monkeypatch.setenv('MMSEG_EXT_KERNEL_CACHE', str(tmp_path))
    if switch_off:
        monkeypatch.setenv('MMSEG_EXT_LS_KERNEL', '0')
        assert kernel.library() is None
    else:
        monkeypatch.setenv('CXX', str(tmp_path / 'no-compiler'))
        with pytest.warns(UserWarning, match='no C.. compiler .*no-compiler.*set CXX'):
            assert kernel.library() is None
    assert not list(tmp_path.iterdir())
    for (m, args), expected in zip(modules(), results):
        with torch.no_grad():
            torch.testing.assert_close(m(*args), expected, atol=1e-5, rtol=0)
    assert not calls


def test_build_is_cached_per_source(monkeypatch, tmp_path):
    monkeypatch.setattr(kernel, '_library', None)
    monkeypatch.setenv('MMSEG_EXT_KERNEL_CACHE', str(tmp_path))
    assert kernel.library() is not None
    built = list(tmp_path.iterdir())
    assert len(built) == 1 and built[0].suffix == '.so'  # no temporary file left
    monkeypatch.setattr(kernel, '_library', None)
    monkeypatch.setenv('CXX', str(tmp_path / 'no-compiler'))  # not needed: the cache serves
    assert kernel.library() is not None


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('channels', [64, 20])  # whole vectors; a tail of 4 channels
def test_layer_norm_in_place_equals_torch(channels, threads):
    torch.manual_seed(0)
    norm = torch.nn.LayerNorm(channels)
    torch.nn.init.normal_(norm.weight)
    torch.nn.init.normal_(norm.bias)
    x = torch.randn(3, 7, 2, channels) * 3 + 1
    expected = norm(x).detach()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # rows split across threads
    try:
        out = kernel.layer_norm_(x, norm)
    finally:
        torch.set_num_threads(before)
    assert out.data_ptr() == x.data_ptr()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_ops_check_their_arguments():
    """The C++ side refuses what it cannot read (it would read out of bounds), naming the tensor."""
    assert kernel.library() is not None
    op = torch.ops.mmseg_ext.ls_window_attention_1d
    q, kv, shared = torch.randn(2, 13, 16), torch.randn(2, 13, 2, 16), torch.randn(2, 3, 2, 16)
    with pytest.raises(RuntimeError, match='kv has shape .*13, 16.*expected'):
        op(q, kv[..., 0, :].contiguous(), shared, None, 2, 4, 2, 0.3)
    with pytest.raises(RuntimeError, match='shared has shape'):
        op(q, kv, shared[:1].contiguous(), None, 2, 4, 2, 0.3)
    with pytest.raises(RuntimeError, match='q must be a CPU Float tensor, got Double'):
        op(q.double(), kv, shared, None, 2, 4, 2, 0.3)
    with pytest.raises(RuntimeError, match='kv must be contiguous'):
        op(q, kv.transpose(0, 1).contiguous().transpose(0, 1), shared, None, 2, 4, 2, 0.3)
    with pytest.raises(RuntimeError, match='not divisible by heads=3'):
        op(q, kv, shared, None, 3, 4, 2, 0.3)
    with pytest.raises(RuntimeError, match='valid has shape'):
        op(q, kv, shared, torch.ones(2, 12, dtype=torch.bool), 2, 4, 2, 0.3)
    with pytest.raises(RuntimeError, match='bias has shape'):
        torch.ops.mmseg_ext.ls_window_attention_2d(q, kv, shared, torch.zeros(2, 36, 16), 3, 4,
                                                   2, 2, 1, 0.3)


def test_ops_pass_opcheck():
    """Schema, fake (meta) kernels and autograd registration agree with the real kernels
    (``torch.library.opcheck``: fake tensors, AOT dispatch, autograd)."""
    assert kernel.library() is not None
    torch.manual_seed(0)
    q = torch.randn(2, 13, 16, requires_grad=True)
    kv = torch.randn(2, 13, 2, 16, requires_grad=True)
    shared = torch.randn(2, 3, 2, 16, requires_grad=True)
    valid = torch.ones(2, 13, dtype=torch.bool)
    valid[1, 9:] = False
    torch.library.opcheck(torch.ops.mmseg_ext.ls_window_attention_1d,
                          (q, kv, shared, valid, 2, 4, 2, 0.3))
    q2, kv2 = torch.randn(2, 1 + 15, 16, requires_grad=True), torch.randn(2, 16, 2, 16)
    bias = torch.randn(2, 16, 16, requires_grad=True)  # w = 2, halo 1: 4 x 4 keys, 16 lanes
    torch.library.opcheck(torch.ops.mmseg_ext.ls_window_attention_2d,
                          (q2, kv2.requires_grad_(), shared, bias, 3, 5, 2, 2, 1, 0.3))


def test_export_and_compile_trace_through_the_ops():
    assert kernel.library() is not None
    m, args = modules()[0]
    exported = torch.export.export(m, args)
    ops = [str(node.target) for _, gm in exported.graph_module.named_modules()
           for node in gm.graph.nodes]
    assert 'mmseg_ext.ls_window_attention_1d.default' in ops
    torch.testing.assert_close(exported.module()(*args), m(*args), atol=1e-6, rtol=0)
    m, (x, hw) = modules()[1]  # 2D training, compiled in one graph
    compiled = torch.compile(m, backend='aot_eager', fullgraph=True)
    expected = gradients_of_input(m, x, hw)
    torch.testing.assert_close(gradients_of_input(compiled, x, hw), expected, atol=1e-6, rtol=0)


def gradients_of_input(m, x, *args):
    x = x.clone().requires_grad_()
    m(x, *args).pow(2).sum().backward()
    return x.grad
