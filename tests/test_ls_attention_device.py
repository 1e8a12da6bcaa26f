"""The LS attention modules on a device, forward AND backward, against the dense references of
the official equations (test_ls_attention.py) computed on CPU with the same weights.

The device is ``MMSEG_EXT_TEST_DEVICE`` (default cpu, where the modules' autograd path serves
training); the GPU check (tools/misc/gpu_check.sh) runs this file on cuda."""
import copy
import os

import pytest
import torch

from mmseg_ext.models.layers import CausalLSAttention1d, LSAttention1d, LSAttention2d

from .test_ls_attention import C, make, ref_1d, ref_2d, ref_causal

DEVICE = torch.device(os.environ.get('MMSEG_EXT_TEST_DEVICE', 'cpu'))
TOL = dict(atol=1e-4, rtol=1e-4)  # fp32; on CUDA the reductions run in another order


def case(name):
    """(module, inputs, ``call(module, x, *inputs)``, ``ref(module, x, *inputs)``), shapes as
    in test_kernel_blocks_and_channel_tails: several windows / segments, padding, memory."""
    torch.manual_seed(1)
    if name == '1d':
        pad = torch.zeros(3, 150, dtype=torch.bool)
        pad[1, 120:] = True
        pad[2, 10:40] = True
        return (make(LSAttention1d, 4, window_size=32, dp_rank=3), torch.randn(3, 150, C),
                [pad], lambda m, x, p: m(x, key_padding_mask=p), ref_1d)
    if name == '2d':
        return (make(LSAttention2d, 4, window_size=4, dp_rank=2, rel_pos_bias=True,
                     num_global_tokens=1), torch.randn(2, 1 + 11 * 10, C), [],
                lambda m, x: m(x, (11, 10)), lambda m, x: ref_2d(m, x, 11, 10))
    return (make(CausalLSAttention1d, 4, window_size=16, segment_size=6, dp_rank=2, rel_pos=True),
            torch.randn(2, 70, C), [torch.randn(2, 12, C)], lambda m, x, mem: m(x, mem),
            ref_causal)


@pytest.mark.parametrize('name', ['1d', '2d', 'causal'])
def test_forward_and_backward_on_device_match_dense_reference(name):
    module, x, extra, call, ref = case(name)
    module.train()  # no dropout in these modules; the training path
    on_device = copy.deepcopy(module).to(DEVICE)
    x_dev = x.to(DEVICE).requires_grad_()
    out = call(on_device, x_dev, *(t.to(DEVICE) for t in extra))
    x.requires_grad_()
    expected = ref(module, x, *extra)
    assert out.device.type == DEVICE.type
    torch.testing.assert_close(out.detach().cpu(), expected.detach(), **TOL)
    grad = torch.randn_like(expected)
    out.backward(grad.to(DEVICE))
    expected.backward(grad)
    torch.testing.assert_close(x_dev.grad.cpu(), x.grad, **TOL)
    params = dict(on_device.named_parameters())
    for key, p in module.named_parameters():
        assert p.grad is not None and params[key].grad is not None, key
        torch.testing.assert_close(params[key].grad.cpu(), p.grad, **TOL, msg=key)
