"""ViL-LS: the Multi-Scale Vision Longformer with Long-Short attention (Zhu et al., NeurIPS 2021,
Sec. 4.3; ViL: Zhang et al., ICCV 2021), as in the official NVIDIA/transformer-ls ``imagenet/``.

Four stages, each: non-overlapping patch embedding (4x4, then 2x2; LayerNorm) -> ``nglo`` learned
global tokens prepended (1 in stages 1-3, none in stage 4) -> pre-norm blocks. Stages 1-2 use
``LSAttention2d`` (window ``w`` = 7 at 224 / 8 at 384, rank 8, relative position bias on the
window, the global tokens attend to and are attended by every token); stages 3-4 use full
attention with a relative position bias (Swin-style table over the token grid, plus learned
global-to-local, local-to-global and global-to-global biases). No absolute position embedding.
The global tokens are dropped between stages; the last stage's tokens are LayerNorm-ed and
averaged (the classifier neck does the average).

The official model asserts the input size (the bias tables of stages 3-4 are sized for it); so
does this one, with an error that says what to change.

Checkpoint converter for the official layout at the end of this file.
"""
import re

import torch
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS
from torch import nn

from ..layers import convert_official_ls_state_dict
from ..layers.attention import MultiheadSelfAttention
from ..layers.block import PreNormBlock
from .fixed_size import FixedSizeBackbone, check_input_size, resolve_arch

# depths, widths and heads of the official launch scripts (medium, base) and of ViL-Small
# (microsoft/vision-longformer), whose LS version the official code can build but did not train.
_WIDTHS = dict(embed_dims=(96, 192, 384, 768), num_heads=(3, 3, 6, 12))
ARCH_SETTINGS = {
    'small': dict(depths=(1, 2, 8, 1), **_WIDTHS),
    'medium': dict(depths=(1, 4, 16, 1), **_WIDTHS),
    'base': dict(depths=(1, 8, 24, 1), **_WIDTHS),
}
PATCH_SIZES = (4, 2, 2, 2)
NUM_GLOBAL_TOKENS = (1, 1, 1, 0)
LS_STAGES = (True, True, False, False)


class RelPosSelfAttention(MultiheadSelfAttention):
    """Full attention with ViL's relative position bias for a fixed ``grid`` (H, W) of tokens
    after ``num_global`` global tokens.

    Local-local pairs read a ``[(2H-1)(2W-1), heads]`` table indexed by the 2D offset; a global
    query gets ``g2l[0]`` for every local key and ``g2g`` for the global keys; a local query gets
    ``g2l[1]`` for every global key.
    """

    def __init__(self, embed_dims, num_heads, grid, num_global, **kwargs):
        super().__init__(embed_dims, num_heads, **kwargs)
        self.grid, self.num_global = tuple(grid), num_global
        h, w = self.grid
        self.rel_pos_table = nn.Parameter(torch.zeros((2 * h - 1) * (2 * w - 1), num_heads))
        if num_global:
            self.g2l = nn.Parameter(torch.zeros(2, num_heads, num_global))
            self.g2g = nn.Parameter(torch.zeros(num_heads, num_global, num_global))
        ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        ys, xs = ys.flatten(), xs.flatten()
        index = (ys[:, None] - ys[None] + h - 1) * (2 * w - 1) + xs[:, None] - xs[None] + w - 1
        self.register_buffer('rel_pos_index', index, persistent=False)
        for p in self.parameters(recurse=False):
            trunc_normal_(p, std=.02)

    def attn_bias(self, hw_shape):
        if tuple(hw_shape) != self.grid:
            raise ValueError(f'relative position bias built for a {self.grid} token grid, '
                             f'got {tuple(hw_shape)}')
        local = self.rel_pos_table[self.rel_pos_index].permute(2, 0, 1)  # [heads, HW, HW]
        if not self.num_global:
            return local
        n = local.shape[-1]
        top = torch.cat([self.g2g, self.g2l[0, :, :, None].expand(-1, -1, n)], dim=-1)
        bottom = torch.cat([self.g2l[1, :, None].expand(-1, n, -1), local], dim=-1)
        return torch.cat([top, bottom], dim=1)


class PatchEmbed(nn.Module):
    """Non-overlapping patches (conv with kernel = stride = p), LayerNorm, global tokens."""

    def __init__(self, in_channels, embed_dims, patch_size, num_global):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, patch_size)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.global_tokens = (nn.Parameter(torch.zeros(1, num_global, embed_dims))
                              if num_global else None)

    def forward(self, x):
        x = self.proj(x)
        hw_shape = x.shape[2:]
        x = self.norm(x.flatten(2).transpose(1, 2))
        if self.global_tokens is not None:
            x = torch.cat([self.global_tokens.expand(x.shape[0], -1, -1), x], dim=1)
        return x, hw_shape


class ViLStage(nn.Module):
    """Patch embedding + blocks; returns the ``[B, C, H, W]`` map of the local tokens."""

    def __init__(self, patch_embed, blocks, num_global):
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        self.num_global = num_global

    def forward(self, x, norm=None):
        x, hw_shape = self.patch_embed(x)
        for block in self.blocks:
            x = block(x, hw_shape)
        x = x[:, self.num_global:]
        if norm is not None:
            x = norm(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, *hw_shape)


@MODELS.register_module()
class ViLLS(FixedSizeBackbone):
    """ViL-LS Small / Medium / Base backbone.

    Args:
        arch (str | dict): ``'small'``, ``'medium'`` or ``'base'``, or a dict with ``depths``,
            ``embed_dims`` and ``num_heads`` (4 entries each).
        img_size (int): input side the relative position tables are built for (224 or 384).
        window_size (int): LS window ``w`` (7 at 224, 8 at 384; official ``f``).
        dp_rank (int): LS dynamic-projection rank ``r`` (official ``r8``).
        in_channels (int): input channels.
        mlp_ratio (float): MLP expansion.
        qkv_bias (bool): bias of the q/k/v projection.
        drop_rate (float): dropout after projections and in the MLP.
        attn_drop_rate (float): dropout on attention weights.
        drop_path_rate (float): stochastic depth, rising linearly over all blocks.
        out_indices (tuple[int]): stages whose ``[B, C, H, W]`` maps are returned (0-3); the last
            stage's map is LayerNorm-ed (the official final norm).
        init_cfg (dict | None): mmengine init config (``Pretrained`` loads a checkpoint).
    """

    def __init__(self, arch='medium', img_size=224, window_size=7, dp_rank=8, in_channels=3,
                 mlp_ratio=4, qkv_bias=True, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0.1, out_indices=(3, ), init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        settings = resolve_arch('ViLLS', arch, ARCH_SETTINGS)
        depths = settings['depths']
        self.img_size = (img_size, img_size)
        self.out_indices = tuple(out_indices)
        rates = torch.linspace(0, drop_path_rate, sum(depths)).split(depths)
        self.stages = nn.ModuleList()
        side, channels = img_size, in_channels
        for i, (dims, heads, patch) in enumerate(
                zip(settings['embed_dims'], settings['num_heads'], PATCH_SIZES)):
            side //= patch
            num_global = NUM_GLOBAL_TOKENS[i]
            blocks = []
            for rate in rates[i].tolist():
                if LS_STAGES[i]:
                    attn = MODELS.build(dict(
                        type='LSAttention2d', embed_dims=dims, num_heads=heads,
                        window_size=window_size, dp_rank=dp_rank, qkv_bias=qkv_bias,
                        attn_drop=attn_drop_rate, proj_drop=drop_rate, rel_pos_bias=True,
                        num_global_tokens=num_global))
                else:
                    attn = RelPosSelfAttention(dims, heads, (side, side), num_global,
                                               qkv_bias=qkv_bias, attn_drop=attn_drop_rate,
                                               proj_drop=drop_rate)
                blocks.append(PreNormBlock(attn, dims, mlp_ratio, nn.GELU, drop_rate, rate))
            embed = PatchEmbed(channels, dims, patch, num_global)
            self.stages.append(ViLStage(embed, blocks, num_global))
            channels = dims
        self.norm = nn.LayerNorm(settings['embed_dims'][-1], eps=1e-6)

    def learned_tokens(self):
        return [stage.patch_embed.global_tokens for stage in self.stages
                if stage.patch_embed.global_tokens is not None]

    def forward(self, x):
        check_input_size(self, x, self.img_size)
        outs = []
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            x = stage(x, self.norm if i == last else None)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


# --------------------------------------------------------------------------------------------
# Official checkpoint (NVIDIA/transformer-ls imagenet/, MsViT) -> mmpretrain ImageClassifier keys.
# --------------------------------------------------------------------------------------------

# Per block, the official model has an attention layer ``layer{i}.{2j+1}`` and an MLP layer
# ``layer{i}.{2j+2}``; the stage's patch embedding is ``layer{i}.0``.
_OFFICIAL_ATTN_BLOCK = {'norm': 'norm1', 'attn.local_relative_position_bias_table':
                        'attn.rel_pos_table', 'attn.g2l_relative_position_bias': 'attn.g2l',
                        'attn.g2g_relative_position_bias': 'attn.g2g'}
_OFFICIAL_MLP_BLOCK = {'norm': 'norm2', 'mlp.fc1': 'mlp.fc1', 'mlp.fc2': 'mlp.fc2'}
_OFFICIAL_EMBED = {'proj': 'proj', 'norm_embed': 'norm', 'cls_token': 'global_tokens'}


def _official_block_key(stage, layer, rest):
    block, is_attn = (layer - 1) // 2, layer % 2 == 1
    table = _OFFICIAL_ATTN_BLOCK if is_attn else _OFFICIAL_MLP_BLOCK
    name, _, param = rest.rpartition('.')
    if is_attn and name == 'attn':  # LS / full attention parameters keep their names
        name, param = rest, ''
    if name in table:
        name = table[name]
    elif not (is_attn and name.startswith('attn.')):
        raise KeyError(f'unexpected key layer{stage + 1}.{layer}.{rest} for the official '
                       'ViL-LS (MsViT) layout')
    return f'backbone.stages.{stage}.blocks.{block}.{name}' + (f'.{param}' if param else '')


def convert_official_vil_ls(state):
    """Official ViL-LS ``model_best.pth`` weights (``net``; ``module.`` prefix optional) ->
    ``ImageClassifier(backbone=ViLLS, neck=GlobalAveragePooling, head=LinearClsHead)`` keys.

    The LS attention layers go through :func:`convert_official_ls_state_dict` (exact conversion
    of the official relative position table); the relative position index buffers are dropped
    (the modules rebuild them)."""
    state = convert_official_ls_state_dict(
        {k.removeprefix('module.'): v for k, v in state.items()})
    out = {}
    for key, value in state.items():
        if key.endswith('relative_position_index'):
            continue
        if m := re.fullmatch(r'layer(\d)\.0\.(proj|norm_embed|cls_token)(\.\w+)?', key):
            out[f'backbone.stages.{int(m[1]) - 1}.patch_embed.{_OFFICIAL_EMBED[m[2]]}'
                f'{m[3] or ""}'] = value
        elif m := re.fullmatch(r'layer(\d)\.(\d+)\.(.+)', key):
            out[_official_block_key(int(m[1]) - 1, int(m[2]), m[3])] = value
        elif m := re.fullmatch(r'(norm|head)\.(weight|bias)', key):
            out[f'backbone.norm.{m[2]}' if m[1] == 'norm' else f'head.fc.{m[2]}'] = value
        else:
            raise KeyError(f'unexpected key {key!r} for the official ViL-LS (MsViT) layout')
    return out
