"""The SegFormer All-MLP decoder (Xie et al., NeurIPS 2021, Sec. 3.2, Eq. 4)."""
import re

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.token_map import to_map, to_seq


def _project(x, weight, bias=None):
    """Per-pixel linear map ``weight [C_out, C_in]`` (+ ``bias``) of a map ``x [B, C_in, H, W]``
    in any memory layout, as one matmul that reads ``x`` in place (batch 1, or a channels-last
    ``x``). Returns tokens ``[B, H*W, C_out]``."""
    return F.linear(to_seq(x), weight, bias)


def _eval_batch_norm_affine(norm):
    """``(scale, shift)`` of a BatchNorm that normalises with running statistics, else None."""
    if not isinstance(norm, _BatchNorm) or norm.training or norm.running_var is None:
        return None
    scale = torch.rsqrt(norm.running_var + norm.eps)
    shift = -norm.running_mean * scale
    if norm.affine:
        scale, shift = scale * norm.weight, shift * norm.weight + norm.bias
    return scale, shift


@MODELS.register_module()
class AllMLPHead(BaseDecodeHead):
    """The paper's decoder (Eq. 4): per level ``Linear(C_i, C)`` -> bilinear upsample to 1/4 ->
    concat ``[c4, c3, c2, c1]`` -> 1x1 conv (no bias) + BN + ReLU -> dropout -> 1x1 classifier.

    ``channels`` is the paper's decoder width C (256 for B0/B1, 768 for B2-B5). Parameters and
    checkpoint keys are those of that description (``linear_c``, ``linear_fuse``, ``conv_seg``).

    It is computed folded, exactly: the Linear layers, the upsampling, the concatenation and the
    fuse conv are all linear, and a per-pixel map commutes with bilinear upsampling (whose
    weights sum to 1, so biases pass through). With ``F_i`` the block of the fuse conv that sees
    level i, ``fuse(concat_i(up(W_i x_i + b_i))) = sum_i up((F_i W_i) x_i) + sum_i F_i b_i``.
    Each level is projected by ``F_i W_i`` (C x C_i) at its own resolution, then upsampled and
    added: no 4C-channel map at 1/4 resolution exists, and at 512x512 the fuse costs
    0.1-1.3 GMAC instead of 4-39 (B0-B5). Projecting before upsampling is the cheaper order for
    every level (docs/benchmarks.md). ``F_i W_i`` is formed in every forward pass, so training
    updates both parameters. In eval mode the BatchNorm's affine map is folded in as well.
    Every parameter takes part in the forward pass, so DDP needs no ``find_unused_parameters``.
    """

    def __init__(self, interpolate_mode='bilinear', **kwargs):
        super().__init__(input_transform='multiple_select', **kwargs)
        self.interpolate_mode = interpolate_mode
        self.linear_c = nn.ModuleList(nn.Linear(c, self.channels) for c in self.in_channels)
        self.linear_fuse = ConvModule(
            self.channels * len(self.in_channels), self.channels, 1, bias=False,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def folded_projections(self):
        """Per level ``F_i W_i`` ([C, C_i]) and the total bias ``sum_i F_i b_i`` ([C])."""
        fuse = self.linear_fuse.conv.weight.flatten(1).split(self.channels, dim=1)
        fuse = fuse[::-1]  # the concatenation runs from the coarsest level to the finest
        weights = [f @ linear.weight for f, linear in zip(fuse, self.linear_c)]
        bias = sum(f @ linear.bias for f, linear in zip(fuse, self.linear_c))
        return weights, bias

    def unfolded_extra_macs(self, input_shapes, weight_products=True):
        """MACs the decoder as written (Eq. 4, the official layer order) spends beyond this
        folded head, as mmengine's FlopAnalyzer counts both, on inputs of ``input_shapes``
        (``[B, C_i, H_i, W_i]`` of every feature map passed to ``forward``).

        With C the width, K the classes, N_i = H_i W_i of the selected levels (N_1 the finest):
        both run the per-level projections (``W_i`` or ``F_i W_i``: B N_i C_i C each), the
        bilinear upsampling of levels 2-4 to N_1 (level 1 is not resized) and the classifier
        at N_1 (B N_1 C K). The decoder as written adds the fuse conv over the concatenated
        channels, ``len(C_i) C^2 B N_1``, and in eval mode the BatchNorm on its output,
        ``B C N_1`` (x2 with an affine map), which this head folds into its weights. This head
        adds ``F_i W_i`` and ``F_i b_i``, ``C^2 (C_i + 1)`` per level once per forward: products
        of two parameters, counted only with ``weight_products``.
        """
        batch, _, height, width = input_shapes[self.in_index[0]]
        tokens = batch * height * width
        extra = len(self.in_channels) * self.channels**2 * tokens
        norm = self.linear_fuse.norm
        if _eval_batch_norm_affine(norm) is not None:
            extra += self.channels * tokens * (2 if norm.affine else 1)
        if weight_products:
            extra -= self.channels**2 * (sum(self.in_channels) + len(self.in_channels))
        return extra

    def forward(self, inputs):
        inputs = self._transform_inputs(inputs)
        weights, bias = self.folded_projections()
        norm = self.linear_fuse.norm
        affine = _eval_batch_norm_affine(norm)
        if affine is not None:
            scale, shift = affine
            weights = [scale[:, None] * weight for weight in weights]
            bias = scale * bias + shift
        # Tokens and channels-last maps (views of each other) throughout: the upsampling, BN
        # and their gradients run on them without layout copies.
        size = inputs[0].shape[2:]
        out = _project(inputs[0], weights[0], bias)
        for x, weight in zip(inputs[1:], weights[1:]):
            y = to_map(_project(x, weight), x.shape[2:])
            out.add_(to_seq(F.interpolate(y, size, mode=self.interpolate_mode,
                                          align_corners=False)))
        out = to_map(out, size)
        if norm is not None and affine is None:
            out = norm(out)
        if self.linear_fuse.with_activation:
            out = self.linear_fuse.activate(out)
        return self.cls_seg(out)

    def cls_seg(self, feat):
        """Dropout, then the 1x1 classifier. The logits stay channels-last in eval mode (the
        upsampling to the image and the argmax over classes read that layout fastest) and are
        NCHW-contiguous in training (the loss's softmax over classes reads that one)."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        logits = to_map(_project(feat, self.conv_seg.weight.flatten(1), self.conv_seg.bias),
                        feat.shape[2:])
        return logits.contiguous() if self.training else logits


def convert_official_head(state):
    """Official ``decode_head.*`` keys (no prefix) -> AllMLPHead keys. ``conv_seg`` is dropped
    only when ``linear_pred`` is present: the official model carries it unused."""
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r'linear_c(\d)\.proj\.(\w+)', key):
            out[f'linear_c.{int(m[1]) - 1}.{m[2]}'] = value
        elif key.startswith('linear_fuse.'):
            out[key] = value
        elif key.startswith('linear_pred.'):
            out[key.replace('linear_pred.', 'conv_seg.')] = value
        elif key.startswith('conv_seg.') and 'linear_pred.weight' in state:
            continue
        else:
            raise KeyError(f'unexpected official decode_head key {key!r}')
    return out


# HF SegformerDecodeHead key prefix -> AllMLPHead key prefix (both directions use it).
_HF_HEAD_PREFIXES = [(f'linear_c.{i}.proj.', f'linear_c.{i}.') for i in range(4)] + [
    ('linear_fuse.weight', 'linear_fuse.conv.weight'), ('batch_norm.', 'linear_fuse.bn.'),
    ('classifier.', 'conv_seg.')]


def _renamed(key, pairs):
    return next((new + key[len(old):] for old, new in pairs if key.startswith(old)), None)


def convert_hf_head(state):
    """HF ``SegformerDecodeHead`` keys (no prefix) -> AllMLPHead keys."""
    out = {}
    for key, value in state.items():
        if (new := _renamed(key, _HF_HEAD_PREFIXES)) is None:
            raise KeyError(f'unexpected HF decode_head key {key!r}')
        out[new] = value
    return out


def head_to_hf(state):
    """AllMLPHead keys (no prefix) -> HF ``SegformerDecodeHead`` keys (``decode_head.*``): the
    inverse of :func:`convert_hf_head`."""
    inverse = [(ours, hf) for hf, ours in _HF_HEAD_PREFIXES]
    out = {}
    for key, value in state.items():
        if (new := _renamed(key, inverse)) is None:
            raise KeyError(f'AllMLPHead key {key!r} has no HF SegformerDecodeHead counterpart '
                           '(HF\'s head is a 1x1 fuse conv without bias, BatchNorm and ReLU)')
        out[f'decode_head.{new}'] = value
    return out
