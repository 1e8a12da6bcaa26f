"""FLOPs (multiply-accumulates) of a model, counted by tracing one forward with mmengine's
FlopAnalyzer, with the conventions of the papers' tools (``tools/analysis_tools/get_flops.py``).

* Products of two activations (QK^T, AV, LS attention's compressions) are counted by default;
  a handle for ``aten::scaled_dot_product_attention`` counts QK^T and AV.
* ``tensor_products=False`` leaves every such product out, as mmcv 1.x's module-hook counter
  did (it sees layers such as Conv and Linear only).
* ``skip_products_in`` leaves them out inside modules of the given types only: the counter of
  the official CvT code hooks layers plus CvT's own attention, so the products of an attention
  module it has no hook for (the LS paper's CvT*-LS) go uncounted.
"""
from functools import partial
from math import prod

from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import bmm_flop_jit


def sdpa_flop_jit(inputs, outputs):
    """MACs of softmax(QK^T)V: 2 * B * heads * Nq * Nk * d (the softmax itself is not counted)."""
    q, k = (inputs[i].type().sizes() for i in (0, 1))
    return 2 * prod(q[:-1]) * k[-2] * q[-1]


def native_mha_flop_jit(inputs, outputs, tensor_products=True):
    """MACs of ``nn.MultiheadAttention``'s fused inference path: the q, k, v and output
    projections, plus QK^T and AV unless ``tensor_products`` is False."""
    q, k = (inputs[i].type().sizes() for i in (0, 1))  # (B, Nq, C), (B, Nk, C)
    batch, nq, c = q
    nk = k[-2]
    macs = batch * (2 * nq + 2 * nk) * c * c
    return macs + (2 * batch * nq * nk * c if tensor_products else 0)


def baddbmm_flop_jit(inputs, outputs):
    """MACs of ``baddbmm(M, A, B)``: those of ``bmm(A, B)`` (nn.MultiheadAttention with a mask)."""
    return bmm_flop_jit(inputs[1:3], outputs)


def _not_counted(inputs, outputs):
    return 0


# Products of two activations. FlopAnalyzer counts matmul, bmm and einsum by default; baddbmm
# and SDPA get the handles above.
TENSOR_PRODUCTS = ('aten::matmul', 'aten::bmm', 'aten::baddbmm', 'aten::einsum',
                   'aten::scaled_dot_product_attention')


def count_flops(model, inputs, tensor_products=True, skip_products_in=()):
    """(MACs, parameters) of ``model(*inputs)``.

    ``skip_products_in``: module classes whose products of activations are not counted.
    """
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.set_op_handle('aten::baddbmm', baddbmm_flop_jit)
    analyzer.set_op_handle('aten::_native_multi_head_attention',
                           partial(native_mha_flop_jit, tensor_products=tensor_products))
    if not tensor_products:
        analyzer.set_op_handle(**dict.fromkeys(TENSOR_PRODUCTS, _not_counted))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    total = analyzer.total()
    if tensor_products and skip_products_in:
        names = [n for n, m in model.named_modules() if isinstance(m, tuple(skip_products_in))]
        ops = {op.removeprefix('aten::') for op in TENSOR_PRODUCTS}
        per_module = analyzer.by_module_and_operator()
        total -= sum(count for name in names
                     for op, count in per_module.get(name, {}).items() if op in ops)
    return total, parameter_count(model)['']
