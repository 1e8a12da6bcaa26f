"""Mix Transformer (MiT), the SegFormer encoder (Xie et al., NeurIPS 2021, Sec. 3.1).

Four stages, each: overlapping patch embedding -> N pre-norm blocks (efficient self-attention +
Mix-FFN) -> LayerNorm. No positional encoding: the 3x3 depthwise conv in Mix-FFN leaks location.
LayerNorm eps follows the official code: 1e-6 in blocks and stage-end norms, 1e-5 in the patch
embedding and the sequence-reduction norm.

Checkpoint converters for the official, HF transformers and mmseg 1.x key layouts live at the end
of this file, next to the model they describe.
"""
import math
import re

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from ...utils import raise_on_mismatch
from ..layers.drop_path import drop_path
from ..layers.token_map import to_map, to_seq
from ..layers.weight_init import init_linear_or_norm

ARCH_SETTINGS = {
    'b0': dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2)),
    'b1': dict(embed_dims=(64, 128, 320, 512), depths=(2, 2, 2, 2)),
    'b2': dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 6, 3)),
    'b3': dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 18, 3)),
    'b4': dict(embed_dims=(64, 128, 320, 512), depths=(3, 8, 27, 3)),
    'b5': dict(embed_dims=(64, 128, 320, 512), depths=(3, 6, 40, 3)),
}
NUM_HEADS = (1, 2, 5, 8)
SR_RATIOS = (8, 4, 2, 1)
PATCH_SIZES = (7, 3, 3, 3)
PATCH_STRIDES = (4, 2, 2, 2)


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch merging (Sec. 3.1): strided conv with K > S, then LayerNorm."""

    def __init__(self, in_channels, embed_dims, patch_size, stride):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, patch_size, stride, patch_size // 2)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-5)

    def forward(self, x):
        x = self.proj(x.contiguous(memory_format=torch.channels_last))
        return self.norm(to_seq(x)), x.shape[2:]


class EfficientSelfAttention(nn.Module):
    """Self-attention with sequence reduction (Eq. 1-2).

    K and V come from the sequence shrunk by a stride-R conv (R = sr_ratio) and LayerNorm, so the
    cost is O(N^2 / R^2). The product runs through ``F.scaled_dot_product_attention``.
    """

    def __init__(self, embed_dims, num_heads, sr_ratio=1, qkv_bias=True, attn_drop=0.,
                 proj_drop=0.):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, sr_ratio, sr_ratio)
            self.norm = nn.LayerNorm(embed_dims, eps=1e-5)

    def forward(self, x, hw_shape):
        B, N, C = x.shape
        heads = self.num_heads
        q = self.q(x).view(B, N, heads, C // heads).transpose(1, 2)
        if self.sr_ratio > 1:
            x = self.norm(to_seq(self.sr(to_map(x, hw_shape))))
        k, v = self.kv(x).view(B, -1, 2, heads, C // heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


class MixFFN(nn.Module):
    """Mix-FFN (Eq. 3): Linear -> 3x3 depthwise conv -> GELU -> Linear."""

    def __init__(self, embed_dims, hidden_dims, drop=0.):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.dwconv = nn.Conv2d(hidden_dims, hidden_dims, 3, 1, 1, groups=hidden_dims)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x, hw_shape):
        x = to_seq(self.dwconv(to_map(self.fc1(x), hw_shape)))
        x = self.drop(F.gelu(x))
        return self.drop(self.fc2(x))


class MiTBlock(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MixFFN(LN(x))."""

    def __init__(self, attn, embed_dims, mlp_ratio=4, drop=0., drop_path_rate=0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.attn = attn
        self.norm2 = nn.LayerNorm(embed_dims, eps=1e-6)
        self.mlp = MixFFN(embed_dims, embed_dims * mlp_ratio, drop)
        self.drop_path_rate = drop_path_rate

    def forward(self, x, hw_shape):
        x = x + drop_path(self.attn(self.norm1(x), hw_shape), self.drop_path_rate, self.training)
        x = x + drop_path(self.mlp(self.norm2(x), hw_shape), self.drop_path_rate, self.training)
        return x


class MiTStage(nn.Module):
    """Patch embedding, blocks and the stage-end LayerNorm; returns the map channels-last."""

    def __init__(self, patch_embed, blocks, embed_dims, with_cp=False):
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.with_cp = with_cp

    def forward(self, x):
        x, hw_shape = self.patch_embed(x)
        for block in self.blocks:
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, hw_shape, use_reentrant=False)
            else:
                x = block(x, hw_shape)
        return to_map(self.norm(x), hw_shape)


@MODELS.register_module()
class MiT(BaseModule):
    """Mix Transformer encoder MiT-B0..B5 (SegFormer, Sec. 3.1 and Table 6).

    Args:
        arch (str): ``'b0'`` .. ``'b5'``.
        in_channels (int): Input image channels.
        out_indices (tuple[int]): Stages whose outputs are returned (strides 4, 8, 16, 32).
        mlp_ratio (int): Mix-FFN expansion.
        qkv_bias (bool): Bias in the q and kv projections.
        drop_rate (float): Dropout after projections.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth, linearly increasing over all blocks.
        stage_attn_cfgs (list[dict | None] | None): Per stage, a registry config for another
            attention (e.g. ``dict(type='LSAttention2d', window_size=8, dp_rank=8)``) built with
            ``embed_dims`` and ``num_heads`` and called as ``attn(x, hw_shape)``. ``None`` keeps the
            efficient self-attention.
        with_cp (bool): Gradient checkpointing of every block (saves memory, costs time).
        init_cfg (dict | None): ``dict(type='Pretrained', checkpoint=...)`` loads an ImageNet MiT
            checkpoint in the official (``mit_b*.pth``), HF or mmseg layout.
    """

    def __init__(self, arch='b0', in_channels=3, out_indices=(0, 1, 2, 3), mlp_ratio=4,
                 qkv_bias=True, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.1,
                 stage_attn_cfgs=None, with_cp=False, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if arch not in ARCH_SETTINGS:
            raise KeyError(f'MiT arch {arch!r} is unknown; choose one of {sorted(ARCH_SETTINGS)}')
        settings = ARCH_SETTINGS[arch]
        self.embed_dims = settings['embed_dims']
        depths = settings['depths']
        self.out_indices = tuple(out_indices)
        stage_attn_cfgs = list(stage_attn_cfgs or [None] * 4)
        if len(stage_attn_cfgs) != 4:
            raise ValueError(f'stage_attn_cfgs needs 4 entries (one per stage), got '
                             f'{len(stage_attn_cfgs)}')
        self.stage_attn_cfgs = stage_attn_cfgs
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (dims, depth) in enumerate(zip(self.embed_dims, depths)):
            patch_embed = OverlapPatchEmbed(
                in_channels if i == 0 else self.embed_dims[i - 1], dims, PATCH_SIZES[i],
                PATCH_STRIDES[i])
            blocks = []
            for j in range(depth):
                if stage_attn_cfgs[i] is None:
                    attn = EfficientSelfAttention(dims, NUM_HEADS[i], SR_RATIOS[i], qkv_bias,
                                                  attn_drop_rate, drop_rate)
                else:
                    attn = MODELS.build(
                        dict(stage_attn_cfgs[i], embed_dims=dims, num_heads=NUM_HEADS[i]))
                blocks.append(
                    MiTBlock(attn, dims, mlp_ratio, drop_rate, rates[sum(depths[:i]) + j]))
            self.stages.append(MiTStage(patch_embed, blocks, dims, with_cp))

    def init_weights(self):
        for m in self.modules():
            if not init_linear_or_norm(m) and isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            self._load_pretrained(self.init_cfg['checkpoint'])

    def _load_pretrained(self, filename):
        """Load a MiT checkpoint of any known key layout. Stages built with another attention
        (``stage_attn_cfgs``) keep their fresh attention weights; everything else must match."""
        state = CheckpointLoader.load_checkpoint(filename, 'cpu')
        state = convert_mit_state_dict(state.get('state_dict', state))
        custom = tuple(f'stages.{i}.' for i, c in enumerate(self.stage_attn_cfgs) if c)

        def replaced(key):
            return key.startswith(custom) and '.attn.' in key

        skipped = sorted(k for k in state if replaced(k))
        state = {k: v for k, v in state.items() if not replaced(k)}
        own = {k: v for k, v in self.state_dict().items() if not replaced(k)}
        raise_on_mismatch(own, state, filename, 'MiT')
        self.load_state_dict(state, strict=False)
        print_log(f'MiT: loaded {filename}' + (
            f'; {len(skipped)} attention tensors of the stages with stage_attn_cfgs were not '
            'used (those layers are trained from scratch)' if skipped else ''), logger='current')

    def forward(self, x):
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                # NCHW-contiguous outputs: heads may .view() them. The next stage reads the
                # channels-last map as it is.
                outs.append(x.contiguous())
        return tuple(outs)


# --------------------------------------------------------------------------------------------
# Checkpoint converters: official / HF transformers / mmseg 1.x key layouts -> this module's keys.
# Each maps a backbone state dict (no prefix) and raises on keys it does not know.
# --------------------------------------------------------------------------------------------

_OFFICIAL_BLOCK = {
    'norm1': 'norm1', 'attn.q': 'attn.q', 'attn.kv': 'attn.kv', 'attn.sr': 'attn.sr',
    'attn.norm': 'attn.norm', 'attn.proj': 'attn.proj', 'norm2': 'norm2', 'mlp.fc1': 'mlp.fc1',
    'mlp.dwconv.dwconv': 'mlp.dwconv', 'mlp.fc2': 'mlp.fc2'}


def _unknown(key, key_layout):
    raise KeyError(f'unexpected key {key!r} for the {key_layout} MiT layout; is the checkpoint '
                   f'in another layout? (see tools/model_converters/segformer_weights.py)')


def convert_official_mit(state):
    """Official SegFormer / ImageNet ``mit_b*.pth`` keys (``head.*`` classifier dropped)."""
    out = {}
    for key, value in state.items():
        if key.startswith('head.'):
            continue
        if m := re.fullmatch(r'patch_embed(\d)\.(proj|norm)\.(\w+)', key):
            out[f'stages.{int(m[1]) - 1}.patch_embed.{m[2]}.{m[3]}'] = value
        elif m := re.fullmatch(r'block(\d)\.(\d+)\.(.+)\.(\w+)', key):
            if m[3] not in _OFFICIAL_BLOCK:
                _unknown(key, 'official')
            out[f'stages.{int(m[1]) - 1}.blocks.{m[2]}.{_OFFICIAL_BLOCK[m[3]]}.{m[4]}'] = value
        elif m := re.fullmatch(r'norm(\d)\.(\w+)', key):
            out[f'stages.{int(m[1]) - 1}.norm.{m[2]}'] = value
        else:
            _unknown(key, 'official')
    return out


_HF_BLOCK = {
    'layer_norm_1': 'norm1', 'attention.self.query': 'attn.q', 'attention.self.sr': 'attn.sr',
    'attention.self.layer_norm': 'attn.norm', 'attention.output.dense': 'attn.proj',
    'layer_norm_2': 'norm2', 'mlp.dense1': 'mlp.fc1', 'mlp.dwconv.dwconv': 'mlp.dwconv',
    'mlp.dense2': 'mlp.fc2'}


def convert_hf_mit(state):
    """HF transformers ``SegformerModel`` keys (with or without the ``segformer.`` prefix)."""
    out, kv = {}, {}
    for key, value in state.items():
        key = key.removeprefix('segformer.').removeprefix('encoder.')
        if m := re.fullmatch(r'patch_embeddings\.(\d)\.(proj|layer_norm)\.(\w+)', key):
            name = 'proj' if m[2] == 'proj' else 'norm'
            out[f'stages.{m[1]}.patch_embed.{name}.{m[3]}'] = value
        elif m := re.fullmatch(r'block\.(\d)\.(\d+)\.attention\.self\.(key|value)\.(\w+)', key):
            kv.setdefault((m[1], m[2], m[4]), {})[m[3]] = value
        elif m := re.fullmatch(r'block\.(\d)\.(\d+)\.(.+)\.(\w+)', key):
            if m[3] not in _HF_BLOCK:
                _unknown(key, 'HF transformers')
            out[f'stages.{m[1]}.blocks.{m[2]}.{_HF_BLOCK[m[3]]}.{m[4]}'] = value
        elif m := re.fullmatch(r'layer_norm\.(\d)\.(\w+)', key):
            out[f'stages.{m[1]}.norm.{m[2]}'] = value
        else:
            _unknown(key, 'HF transformers')
    for (stage, block, param), pair in kv.items():
        out[f'stages.{stage}.blocks.{block}.attn.kv.{param}'] = torch.cat(
            [pair['key'], pair['value']])
    return out


def mit_to_hf(state):
    """This module's keys -> HF ``SegformerModel`` keys (``segformer.encoder.*``; the fused
    ``kv`` projection split into ``key`` and ``value``): the inverse of :func:`convert_hf_mit`."""
    inverse = {ours: hf for hf, ours in _HF_BLOCK.items()}
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r'stages\.(\d)\.patch_embed\.(proj|norm)\.(\w+)', key):
            name = 'proj' if m[2] == 'proj' else 'layer_norm'
            out[f'patch_embeddings.{m[1]}.{name}.{m[3]}'] = value
        elif m := re.fullmatch(r'stages\.(\d)\.blocks\.(\d+)\.attn\.kv\.(\w+)', key):
            k, v = value.chunk(2)
            prefix = f'block.{m[1]}.{m[2]}.attention.self'
            out[f'{prefix}.key.{m[3]}'], out[f'{prefix}.value.{m[3]}'] = k, v
        elif (m := re.fullmatch(r'stages\.(\d)\.blocks\.(\d+)\.(.+)\.(\w+)', key)) and \
                m[3] in inverse:
            out[f'block.{m[1]}.{m[2]}.{inverse[m[3]]}.{m[4]}'] = value
        elif m := re.fullmatch(r'stages\.(\d)\.norm\.(\w+)', key):
            out[f'layer_norm.{m[1]}.{m[2]}'] = value
        else:
            raise KeyError(f'MiT key {key!r} has no HF SegformerModel counterpart (HF has only '
                           'the efficient self-attention: MiT-LS stages do not convert)')
    return {f'segformer.encoder.{k}': v for k, v in out.items()}


def convert_mmseg_mit(state):
    """mmseg 1.x ``MixVisionTransformer`` keys (``layers.i.{0,1,2}``, fused in_proj)."""
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r'layers\.(\d)\.0\.(projection|norm)\.(\w+)', key):
            name = 'proj' if m[2] == 'projection' else 'norm'
            out[f'stages.{m[1]}.patch_embed.{name}.{m[3]}'] = value
        elif m := re.fullmatch(r'layers\.(\d)\.1\.(\d+)\.(.+)\.(\w+)', key):
            prefix, name, param = f'stages.{m[1]}.blocks.{m[2]}', m[3], m[4]
            if name == 'attn.attn' and param in ('in_proj_weight', 'in_proj_bias'):
                q, k, v = value.chunk(3)
                suffix = param.removeprefix('in_proj_')
                out[f'{prefix}.attn.q.{suffix}'] = q
                out[f'{prefix}.attn.kv.{suffix}'] = torch.cat([k, v])
                continue
            if name.startswith('ffn.layers.'):
                # 1x1 convs (out, in, 1, 1) become Linear weights (out, in).
                target = {'ffn.layers.0': 'mlp.fc1', 'ffn.layers.1': 'mlp.dwconv',
                          'ffn.layers.4': 'mlp.fc2'}.get(name)
                if target in ('mlp.fc1', 'mlp.fc2') and param == 'weight':
                    value = value.flatten(1)
            else:
                target = {'norm1': 'norm1', 'norm2': 'norm2', 'attn.attn.out_proj': 'attn.proj',
                          'attn.sr': 'attn.sr', 'attn.norm': 'attn.norm'}.get(name)
            if target is None:
                _unknown(key, 'mmseg')
            out[f'{prefix}.{target}.{param}'] = value
        elif m := re.fullmatch(r'layers\.(\d)\.2\.(\w+)', key):
            out[f'stages.{m[1]}.norm.{m[2]}'] = value
        else:
            _unknown(key, 'mmseg')
    return out


def detect_mit_key_layout(state):
    """Name the key layout of a MiT state dict: 'ours', 'official', 'hf' or 'mmseg'."""
    keys = list(state)
    if any(k.startswith('stages.') for k in keys):
        return 'ours'
    if any(re.match(r'(segformer\.)?(encoder\.)?patch_embeddings\.', k) for k in keys):
        return 'hf'
    if any(k.startswith('layers.') for k in keys):
        return 'mmseg'
    if any(k.startswith('patch_embed1.') for k in keys):
        return 'official'
    raise KeyError('cannot tell the layout of this MiT checkpoint: expected keys like '
                   "'patch_embed1.*' (official), 'patch_embeddings.*' (HF), 'layers.*' (mmseg) "
                   f"or 'stages.*' (mmseg_ext); first keys: {keys[:3]}")


MIT_CONVERTERS = {'ours': dict, 'official': convert_official_mit, 'hf': convert_hf_mit,
                  'mmseg': convert_mmseg_mit}


def convert_mit_state_dict(state, key_layout=None):
    """Convert a backbone state dict of any known key layout to this module's keys.

    A whole model's state dict (an mmpretrain classifier or an mmseg segmentor: ``backbone.*``
    next to ``neck.*`` / ``head.*`` / ``decode_head.*``) gives its backbone."""
    state = {k.removeprefix('module.'): v for k, v in state.items()}
    if any(k.startswith('backbone.') for k in state):
        state = {k.removeprefix('backbone.'): v for k, v in state.items()
                 if k.startswith('backbone.')}
    return MIT_CONVERTERS[key_layout or detect_mit_key_layout(state)](state)
