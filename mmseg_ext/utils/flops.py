"""FLOPs (multiply-accumulates) of a model, counted by tracing one forward with mmengine's
FlopAnalyzer, with the conventions of the papers' tools (``tools/analysis_tools/get_flops.py``).

* Products of two activations (QK^T, AV, LS attention's compressions) are counted by default;
  a handle for ``aten::scaled_dot_product_attention`` counts QK^T and AV.
* ``tensor_products=False`` leaves every such product out, as mmcv 1.x's module-hook counter
  did (it sees layers such as Conv and Linear only).
* ``skip_products_in`` leaves them out inside modules of the given types only: the counter of
  the official CvT code hooks layers plus CvT's own attention, so the products of an attention
  module it has no hook for (the LS paper's CvT*-LS) go uncounted.

What runs can differ from what a paper counts: ``AllMLPHead`` computes SegFormer's decoder
folded (the same function, 4.2 G executed for B0 at 512 x 512 where the paper counts 8.4 G).
:func:`count_config_flops` gives both; a decode head with ``unfolded_extra_macs`` says what its
layers as written add, for the input shapes recorded during the counted forward.
"""
from contextlib import contextmanager
from functools import partial
from math import prod

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.analysis.jit_handles import bmm_flop_jit
from mmengine.registry import MODELS, init_default_scope


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


def tensor_forward(model):
    """A module exposing ``model(inputs, mode='tensor')`` (segmentors, classifiers) /
    ``_forward`` (detectors, which need the image and batch shapes in a data sample)."""

    class TensorForward(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            if hasattr(self.model, 'encode_decode') or not hasattr(self.model, '_forward'):
                return self.model(x, mode='tensor')
            from mmdet.structures import DetDataSample
            shape = tuple(x.shape[-2:])
            sample = DetDataSample(metainfo=dict(img_shape=shape, batch_input_shape=shape,
                                                 ori_shape=shape))
            return self.model._forward(x, [sample])

    return TensorForward()


@contextmanager
def recorded_head_inputs(model):
    """Yields a list that each forward of a segmentor in ``model`` whose decode head has
    ``unfolded_extra_macs`` extends by ``(head, input shapes)``. mmseg's tensor-mode forward
    calls ``decode_head.forward`` directly, past any hook on the head, so a forward hook on the
    module whose output the head reads (the neck, else the backbone) records them."""
    records, handles = [], []

    def recorder(head):
        return lambda module, args, feats: records.append(
            (head, [tuple(map(int, x.shape)) for x in feats]))

    for module in model.modules():
        head = getattr(module, 'decode_head', None)
        if hasattr(head, 'unfolded_extra_macs'):
            feeder = module.neck if module.with_neck else module.backbone
            handles.append(feeder.register_forward_hook(recorder(head)))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def count_config_flops(cfg, shape, tensor_products=True, skip_products_in=()):
    """(executed MACs, MACs as the paper counts them, parameters) of ``cfg.model``, built
    without pre-trained weights, in eval mode, on one random ``(3, H, W)`` image.

    The second count differs from the first only for a folded ``AllMLPHead``: it adds what the
    decoder as written (the paper's model) adds, :meth:`AllMLPHead.unfolded_extra_macs`.
    ``skip_products_in``: registered type names, as :func:`count_flops` takes the classes.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    skip = [MODELS.get(name) for name in skip_products_in]
    if None in skip:
        raise KeyError(f'--skip-products-in: unknown module type '
                       f'{skip_products_in[skip.index(None)]!r}')
    cfg.model.pop('init_cfg', None)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad(), recorded_head_inputs(model) as records:
        executed, params = count_flops(tensor_forward(model), (torch.randn(1, 3, *shape), ),
                                       tensor_products=tensor_products, skip_products_in=skip)
    extra = sum(head.unfolded_extra_macs(shapes, weight_products=tensor_products)
                for head, shapes in records)
    return executed, executed + extra, params
