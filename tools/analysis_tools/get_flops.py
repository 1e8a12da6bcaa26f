"""FLOPs and parameters of a config's model, as mmseg's / mmdet's get_flops.py report them.

    python tools/analysis_tools/get_flops.py CONFIG --shape 512 512
    python tools/analysis_tools/get_flops.py PANOPTIC_CONFIG --shape 800 1333 [--no-tensor-products]

FLOPs are multiply-accumulates (the convention of the papers and mmcv's counter), counted by
tracing one forward (segmentors: ``mode='tensor'``; detectors: ``_forward`` on one image) with
mmengine's FlopAnalyzer. The attention products are included: a handle for
``aten::scaled_dot_product_attention`` counts QK^T and AV. ``--no-tensor-products`` leaves out
every product of two activations (matmul, bmm, einsum, SDPA), as mmcv 1.x's module-hook counter
did: that counter, which mmdet 2.x's get_flops.py used, only sees layers such as Conv and Linear.
"""
import argparse
from functools import partial
from math import prod

from mmengine.config import DictAction


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
    from mmengine.analysis.jit_handles import bmm_flop_jit
    return bmm_flop_jit(inputs[1:3], outputs)


def _not_counted(inputs, outputs):
    return 0


# Products of two activations. FlopAnalyzer counts matmul, bmm and einsum by default; baddbmm
# and SDPA get the handles above.
TENSOR_PRODUCTS = ('aten::matmul', 'aten::bmm', 'aten::baddbmm', 'aten::einsum',
                   'aten::scaled_dot_product_attention')


def count(model, inputs, tensor_products=True):
    from mmengine.analysis import FlopAnalyzer, parameter_count
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.set_op_handle('aten::baddbmm', baddbmm_flop_jit)
    analyzer.set_op_handle('aten::_native_multi_head_attention',
                           partial(native_mha_flop_jit, tensor_products=tensor_products))
    if not tensor_products:
        analyzer.set_op_handle(**dict.fromkeys(TENSOR_PRODUCTS, _not_counted))
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total(), parameter_count(model)['']


def tensor_forward(model):
    """A module exposing ``model(inputs, mode='tensor')`` (segmentors) / ``_forward``
    (detectors, which need the image and batch shapes in a data sample)."""
    import torch

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 512],
                        help='input H W (one number: square)')
    parser.add_argument('--no-tensor-products', action='store_true',
                        help='leave out matmul / bmm / einsum / SDPA, as mmcv 1.x counted')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.decode_head.num_classes=150')
    args = parser.parse_args()
    import torch
    from mmengine.registry import init_default_scope

    import mmseg_ext  # noqa: F401
    from mmseg_ext.apis import load_config
    h, w = args.shape if len(args.shape) == 2 else args.shape * 2
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmengine.registry import MODELS
    cfg.model.pop('init_cfg', None)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        flops, params = count(tensor_forward(model), (torch.randn(1, 3, h, w), ),
                              tensor_products=not args.no_tensor_products)
    print(f'{"=" * 30}\nConfig: {args.config}\nInput shape: (3, {h}, {w})\n'
          f'Flops: {flops / 1e9:.1f} G\nParams: {params / 1e6:.2f} M\n{"=" * 30}')


if __name__ == '__main__':
    main()
