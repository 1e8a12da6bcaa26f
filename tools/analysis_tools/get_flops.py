"""FLOPs and parameters of a config's model, as mmseg's / mmdet's get_flops.py report them.

    python tools/analysis_tools/get_flops.py CONFIG --shape 512 512
    python tools/analysis_tools/get_flops.py PANOPTIC_CONFIG --shape 800 1333 [--no-tensor-products]

    python tools/analysis_tools/get_flops.py configs/ls_transformer/cvt-ls-13_in1k.py \
        --shape 224 224 --skip-products-in LSAttention2d

FLOPs are multiply-accumulates (the convention of the papers and mmcv's counter), counted by
tracing one forward (segmentors and classifiers: ``mode='tensor'``; detectors: ``_forward`` on one
image) with mmengine's FlopAnalyzer (mmseg_ext/utils/flops.py). The attention products are
included: a handle for ``aten::scaled_dot_product_attention`` counts QK^T and AV.
``--no-tensor-products`` leaves out every product of two activations (matmul, bmm, einsum, SDPA),
as mmcv 1.x's module-hook counter did: that counter, which mmdet 2.x's get_flops.py used, only
sees layers such as Conv and Linear. ``--skip-products-in TYPE ...`` leaves them out only inside
modules of those registered types (the official CvT counter has no hook for LS attention).
"""
import argparse

from mmengine.config import DictAction


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
    parser.add_argument('--skip-products-in', nargs='+', default=[], metavar='TYPE',
                        help='registered module types whose activation products are left out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.decode_head.num_classes=150')
    args = parser.parse_args()
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)

    # isort: split
    import torch
    from mmengine.registry import init_default_scope

    from mmseg_ext.apis import load_config
    from mmseg_ext.utils.flops import count_flops
    h, w = args.shape if len(args.shape) == 2 else args.shape * 2
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmengine.registry import MODELS
    skip = [MODELS.get(name) for name in args.skip_products_in]
    if None in skip:
        raise KeyError(f'--skip-products-in: unknown module type '
                       f'{args.skip_products_in[skip.index(None)]!r}')
    cfg.model.pop('init_cfg', None)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        flops, params = count_flops(tensor_forward(model), (torch.randn(1, 3, h, w), ),
                                    tensor_products=not args.no_tensor_products,
                                    skip_products_in=skip)
    print(f'{"=" * 30}\nConfig: {args.config}\nInput shape: (3, {h}, {w})\n'
          f'Flops: {flops / 1e9:.1f} G\nParams: {params / 1e6:.2f} M\n{"=" * 30}')


if __name__ == '__main__':
    main()
