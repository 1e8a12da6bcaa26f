"""FLOPs and parameters of a config's model, as mmseg's get_flops.py reports them.

    python tools/analysis_tools/get_flops.py CONFIG --shape 512 512

FLOPs are multiply-accumulates (the convention of the SegFormer paper and mmcv's counter), counted
by tracing one forward with mmengine's FlopAnalyzer. The attention products are included: a
handle for ``aten::scaled_dot_product_attention`` counts QK^T and AV.
"""
import argparse
from math import prod

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import DictAction
from mmengine.registry import init_default_scope

import mmseg_ext  # noqa: F401
from mmseg_ext.apis import load_config


def sdpa_flop_jit(inputs, outputs):
    """MACs of softmax(QK^T)V: 2 * B * heads * Nq * Nk * d (the softmax itself is not counted)."""
    q, k = (inputs[i].type().sizes() for i in (0, 1))
    return 2 * prod(q[:-1]) * k[-2] * q[-1]


def count(model, inputs):
    analyzer = FlopAnalyzer(model, inputs)
    analyzer.set_op_handle('aten::scaled_dot_product_attention', sdpa_flop_jit)
    analyzer.unsupported_ops_warnings(False)
    analyzer.uncalled_modules_warnings(False)
    return analyzer.total(), parameter_count(model)['']


class _TensorForward(torch.nn.Module):
    """Expose ``model(inputs, mode='tensor')`` (segmentors) / ``_forward`` (detectors)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        if hasattr(self.model, 'encode_decode') or not hasattr(self.model, '_forward'):
            return self.model(x, mode='tensor')
        return self.model._forward(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 512], help='H W')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    h, w = args.shape if len(args.shape) == 2 else args.shape * 2
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmengine.registry import MODELS
    cfg.model.pop('init_cfg', None)
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        flops, params = count(_TensorForward(model), (torch.randn(1, 3, h, w), ))
    print(f'{"=" * 30}\nConfig: {args.config}\nInput shape: (3, {h}, {w})\n'
          f'Flops: {flops / 1e9:.1f} G\nParams: {params / 1e6:.2f} M\n{"=" * 30}')


if __name__ == '__main__':
    main()
