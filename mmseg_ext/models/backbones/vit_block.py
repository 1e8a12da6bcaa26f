"""Pieces shared by the ViL-LS and CvT*-LS backbones: the pre-norm transformer block, full
attention, the arch table lookup and the input-size check of fixed-size models.

Block: ``x = x + DropPath(attn(LN(x), hw_shape)); x = x + DropPath(MLP(LN(x)))`` (ViT,
Dosovitskiy et al. 2021), with the token map's ``hw_shape`` passed to the attention so that 2D
attentions (LS, relative position bias) can use it. Global tokens (ViL) / the class token (CvT)
come first in ``x``.
"""
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from .mit import drop_path, init_linear_or_norm

ARCH_KEYS = ('depths', 'embed_dims', 'num_heads')


def resolve_arch(model, arch, settings):
    """``arch``: a name of ``settings`` or a dict with ``depths``, ``embed_dims`` and
    ``num_heads`` (one entry per stage); returns that dict."""
    if isinstance(arch, str):
        if arch not in settings:
            raise KeyError(f'{model} arch {arch!r} is unknown; choose one of {sorted(settings)} '
                           f'or give a dict with {", ".join(ARCH_KEYS)}')
        return settings[arch]
    stages = len(next(iter(settings.values()))['depths'])
    if (not isinstance(arch, dict) or set(arch) != set(ARCH_KEYS)
            or any(len(arch[k]) != stages for k in ARCH_KEYS)):
        raise KeyError(f'{model} arch {arch!r}: a custom arch is a dict with exactly '
                       f'{", ".join(ARCH_KEYS)}, {stages} entries each')
    return arch


class FixedSizeBackbone(BaseModule):
    """Base of ViLLS and CvTLS: the official initialisation (:func:`init_linear_or_norm`;
    convolutions keep PyTorch's default; learned tokens truncated normal) unless ``init_cfg``
    loads a checkpoint."""

    def learned_tokens(self):
        """Class / global tokens and position embeddings (parameters), for the initialisation."""
        return []

    def init_weights(self):
        if self.init_cfg is not None and self.init_cfg.get('type') == 'Pretrained':
            super().init_weights()  # mmengine's PretrainedInit (``prefix`` works as usual)
            return
        for m in self.modules():
            init_linear_or_norm(m)
        for token in self.learned_tokens():
            trunc_normal_(token, std=.02)


def check_input_size(model, x, img_size):
    """Raise a clear error when a model built for one input size gets another."""
    if tuple(x.shape[-2:]) != tuple(img_size):
        raise ValueError(
            f'{type(model).__name__} was built for {img_size[0]}x{img_size[1]} inputs '
            f'(backbone.img_size={img_size[0]}) and got {x.shape[-2]}x{x.shape[-1]}: its '
            'position tables have a fixed size. Make the test pipeline end in a '
            f'{img_size[0]}x{img_size[1]} crop, or build the model for this size.')


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the activation of the official CvT code."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Sequential):
    """Linear(C, rC) -> activation -> dropout -> Linear(rC, C) -> dropout."""

    def __init__(self, embed_dims, mlp_ratio=4, act=nn.GELU, drop=0.):
        hidden = int(embed_dims * mlp_ratio)
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.act = act()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden, embed_dims)
        self.drop2 = nn.Dropout(drop)


class MultiheadSelfAttention(nn.Module):
    """Full softmax attention over all tokens (fused q/k/v projection, SDPA).

    ``attn_bias(hw_shape)`` (None here) gives an additive ``[heads, N, N]`` score bias;
    subclasses use it for relative position biases.
    """

    def __init__(self, embed_dims, num_heads, qkv_bias=True, attn_drop=0., proj_drop=0.):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def attn_bias(self, hw_shape):
        return None

    def forward(self, x, hw_shape):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(
            2, 0, 3, 1, 4)
        bias = self.attn_bias(hw_shape)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
            dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))


class PreNormBlock(nn.Module):
    """``x + attn(LN(x))`` then ``x + MLP(LN(x))``, each branch with stochastic depth."""

    def __init__(self, attn, embed_dims, mlp_ratio=4, act=nn.GELU, drop=0., drop_path_rate=0.,
                 eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=eps)
        self.attn = attn
        self.norm2 = nn.LayerNorm(embed_dims, eps=eps)
        self.mlp = Mlp(embed_dims, mlp_ratio, act, drop)
        self.drop_path_rate = drop_path_rate

    def forward(self, x, hw_shape):
        x = x + drop_path(self.attn(self.norm1(x), hw_shape), self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
