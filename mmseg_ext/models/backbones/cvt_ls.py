"""CvT*-LS: the Convolutional vision Transformer with Long-Short attention (Zhu et al., NeurIPS
2021, Sec. 4.3 and Table 6; CvT: Wu et al., ICCV 2021).

Three stages, each: convolutional token embedding (7x7/4, then 3x3/2; LayerNorm) -> learned
absolute position embedding -> pre-norm blocks (attention + MLP with QuickGELU). Stages 1-2 (56x56
and 28x28 tokens at 224) use ``LSAttention2d`` (window 7, rank 8); stage 3 prepends the class
token and uses full attention. The head reads the LayerNorm-ed class token.

No official CvT*-LS code or checkpoint was released (NVIDIA/transformer-ls has ViL-LS only). The
star marks the paper's own CvT: we follow the official CvT code (microsoft/CvT, cls_cvt.py) for
everything CvT and read the rest from the paper's sizes (docs/imagenet.md, "CvT*-LS"):
linear q/k/v projections instead of CvT's strided depthwise-conv projections, and learned
absolute position embeddings (0.43 M parameters at 224; without them the model has 19.87 M
parameters, not the paper's 20.3 M). The model is therefore built for one input size.
"""
import torch
from mmengine.registry import MODELS
from torch import nn

from ..layers.attention import MultiheadSelfAttention
from ..layers.block import PreNormBlock
from ..layers.mlp import QuickGELU
from .fixed_size import FixedSizeBackbone, check_input_size, resolve_arch

ARCH_SETTINGS = {
    '13': dict(depths=(1, 2, 10), embed_dims=(64, 192, 384), num_heads=(1, 3, 6)),
    '21': dict(depths=(1, 4, 16), embed_dims=(64, 192, 384), num_heads=(1, 3, 6)),
}
PATCH_SIZES = (7, 3, 3)
PATCH_STRIDES = (4, 2, 2)
PATCH_PADDINGS = (2, 1, 1)
LS_STAGES = (True, True, False)


class ConvEmbed(nn.Module):
    """Convolutional token embedding: strided conv, then LayerNorm over channels."""

    def __init__(self, in_channels, embed_dims, patch_size, stride, padding):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride, padding)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-5)

    def forward(self, x):
        x = self.proj(x)
        hw_shape = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2)), hw_shape


class CvTStage(nn.Module):
    """Token embedding + position embedding (+ class token) + blocks; returns (map, cls)."""

    def __init__(self, embed, num_tokens, embed_dims, blocks, with_cls_token):
        super().__init__()
        self.patch_embed = embed
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, embed_dims))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims)) if with_cls_token else None
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        x, hw_shape = self.patch_embed(x)
        x = x + self.pos_embed
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x, hw_shape)
        cls = None
        if self.cls_token is not None:
            cls, x = x[:, 0], x[:, 1:]
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw_shape), cls


@MODELS.register_module()
class CvTLS(FixedSizeBackbone):
    """CvT*-LS-13 / -21 backbone (LS paper Table 6).

    Args:
        arch (str | dict): ``'13'`` or ``'21'``, or a dict with ``depths``, ``embed_dims`` and
            ``num_heads`` (3 entries each).
        img_size (int): input side the position embeddings are built for (224 or 384).
        window_size (int): LS window ``w`` (7 at 224, 8 at 384).
        dp_rank (int): LS dynamic-projection rank ``r``.
        in_channels (int): input channels.
        mlp_ratio (float): MLP expansion.
        qkv_bias (bool): bias of the q/k/v projections.
        drop_rate (float): dropout after projections and in the MLP.
        attn_drop_rate (float): dropout on the attention weights.
        drop_path_rate (float): stochastic depth of the last stage, rising linearly over its
            blocks (stages 1-2 have none, as in the official CvT configs).
        out_indices (tuple[int]): stages to return (0-2).
        out_type (str): ``'cls_token'``: the last stage gives the LayerNorm-ed class token
            ``[B, C]`` (what the classifier head reads); ``'featmap'``: every returned stage
            gives its ``[B, C, H, W]`` token map.
        init_cfg (dict | None): mmengine init config (``Pretrained`` loads a checkpoint).
    """

    def __init__(self, arch='13', img_size=224, window_size=7, dp_rank=8, in_channels=3,
                 mlp_ratio=4, qkv_bias=True, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0.1, out_indices=(2, ), out_type='cls_token', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch('CvTLS', arch, ARCH_SETTINGS)
        if out_type not in ('cls_token', 'featmap'):
            raise ValueError(f"out_type must be 'cls_token' or 'featmap', got {out_type!r}")
        self.img_size = (img_size, img_size)
        self.out_indices = tuple(out_indices)
        self.out_type = out_type
        depths = settings['depths']
        self.stages = nn.ModuleList()
        size, channels = img_size, in_channels
        for i, (dims, heads, depth) in enumerate(
                zip(settings['embed_dims'], settings['num_heads'], depths)):
            size = (size + 2 * PATCH_PADDINGS[i] - PATCH_SIZES[i]) // PATCH_STRIDES[i] + 1
            embed = ConvEmbed(channels, dims, PATCH_SIZES[i], PATCH_STRIDES[i], PATCH_PADDINGS[i])
            last = i == len(depths) - 1
            rates = torch.linspace(0, drop_path_rate, depth).tolist() if last else [0.] * depth
            blocks = []
            for rate in rates:
                if LS_STAGES[i]:
                    attn = MODELS.build(dict(
                        type='LSAttention2d', embed_dims=dims, num_heads=heads,
                        window_size=window_size, dp_rank=dp_rank, qkv_bias=qkv_bias,
                        attn_drop=attn_drop_rate, proj_drop=drop_rate))
                else:
                    attn = MultiheadSelfAttention(dims, heads, qkv_bias, attn_drop_rate,
                                                  drop_rate)
                blocks.append(PreNormBlock(attn, dims, mlp_ratio, QuickGELU, drop_rate, rate,
                                           eps=1e-5))
            self.stages.append(CvTStage(embed, size * size, dims, blocks, with_cls_token=last))
            channels = dims
        self.norm = nn.LayerNorm(settings['embed_dims'][-1], eps=1e-5)

    def learned_tokens(self):
        return [p for stage in self.stages for p in (stage.pos_embed, stage.cls_token)
                if p is not None]

    def forward(self, x):
        check_input_size(self, x, self.img_size)
        outs = []
        for i, stage in enumerate(self.stages):
            x, cls = stage(x)
            if i in self.out_indices:
                if cls is not None and self.out_type == 'cls_token':
                    outs.append(self.norm(cls))
                else:
                    outs.append(x)
        return tuple(outs)

