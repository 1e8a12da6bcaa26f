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

``Flops:`` is what our implementation executes. SegFormer's ``AllMLPHead`` computes the paper's
decoder folded (the same function, fewer MACs), so for it a second line gives the model as the
paper counts it, with the head unfolded (B0 at 512 x 512: 4.2 G executed, 8.5 G as the paper
counts them; the paper gives 8.4 G). For every other model the two are equal and the first line
says so.
"""
import argparse

from mmengine.config import DictAction


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
    from mmseg_ext.apis import load_config
    from mmseg_ext.utils.flops import count_config_flops
    h, w = args.shape if len(args.shape) == 2 else args.shape * 2
    cfg = load_config(args.config, args.cfg_options)
    executed, as_paper, params = count_config_flops(
        cfg, (h, w), tensor_products=not args.no_tensor_products,
        skip_products_in=args.skip_products_in)
    if as_paper == executed:
        flops = f'Flops: {executed / 1e9:.1f} G (executed and as the paper counts them)\n'
    else:
        flops = (f'Flops: {executed / 1e9:.1f} G (executed: All-MLP head folded)\n'
                 f'Flops as the paper counts them (All-MLP head unfolded): '
                 f'{as_paper / 1e9:.1f} G\n')
    print(f'{"=" * 30}\nConfig: {args.config}\nInput shape: (3, {h}, {w})\n'
          f'{flops}Params: {params / 1e6:.2f} M\n{"=" * 30}')


if __name__ == '__main__':
    main()
