"""Pieces shared by the Long-Short Transformer attention modules (Zhu et al., NeurIPS 2021).

* :class:`DynamicProjection` -- the long-range branch, Sec. 3.1:
  ``P_i = softmax_n(X W_i^P)`` (n x r), ``K_bar_i = P_i^T K_i``, ``V_bar_i = P_i^T V_i``.
* :class:`DualLayerNorm` -- Sec. 3.2: ``LN_L`` on the long-range and ``LN_S`` on the short-range
  keys/values, so that the two branches enter the joint softmax at the same scale.
* :func:`joint_attention` -- Eq. (4): ONE softmax over the concatenated scores
  ``[Q K_short^T ; Q K_bar^T] / sqrt(d)`` with the matching values ``[V_short ; V_bar]``.
* :class:`LongShortAttentionBase` -- q/k/v and output projections plus the two pieces above.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule


def masked_softmax(logits: torch.Tensor, valid: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax (fp32 at least) over ``dim`` restricted to ``valid``; all-invalid slices give 0."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return logits.masked_fill(~valid, torch.finfo(logits.dtype).min).softmax(dim) * valid


def joint_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor,
                    bias: torch.Tensor | None = None, dropout_p: float = 0.) -> torch.Tensor:
    """Windowed attention with ONE softmax over short- and long-range keys (Eq. 4), in fp32.

    Args:
        q: ``[B, h, T, Lq, d]`` queries of T windows.
        k, v: ``[B, h, T, Lk, d]`` the window's keys/values, short-range then long-range ones.
        allowed: bool, broadcastable to ``[B, h, T, Lq, Lk]``; False entries get zero weight.
        bias: optional additive score bias broadcastable to ``[B, h, T, Lq, Lk]``.

    Returns ``[B, h, T, Lq, d]`` in ``q``'s dtype. Rows without any allowed key return zeros
    (no NaN), and masked keys receive exactly zero gradient.
    """
    out_dtype = q.dtype
    dtype = torch.promote_types(q.dtype, torch.float32)
    b, h, t, lq, d = q.shape
    lk = k.shape[-2]
    with torch.autocast(device_type=q.device.type, enabled=False):
        mask = torch.zeros((), dtype=dtype, device=q.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)
        if bias is not None:
            mask = mask + bias.to(dtype)
        mask = mask.expand(b, h, t, -1, lk).reshape(b * h, t, mask.shape[-2], lk)
        out = F.scaled_dot_product_attention(
            q.to(dtype).reshape(b * h, t, lq, d), k.to(dtype).reshape(b * h, t, lk, d),
            v.to(dtype).reshape(b * h, t, lk, d), attn_mask=mask, dropout_p=dropout_p)
        out = out.view(b, h, t, lq, d) * allowed.any(-1, keepdim=True)
    return out.to(out_dtype)


class DynamicProjection(nn.Module):
    """Long-range branch: ``P = softmax over positions of (X W^P)``, ``K_bar = P^T K`` (Sec. 3.1).

    ``r = dp_rank`` projected vectors per head. :meth:`forward` works on any leading dims, so the
    causal module can apply it per segment by inserting a segment dim.
    """

    def __init__(self, embed_dims: int, num_heads: int, dp_rank: int):
        super().__init__()
        self.num_heads, self.dp_rank = num_heads, dp_rank
        self.proj = nn.Linear(embed_dims, num_heads * dp_rank)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, N, C]`` -> ``X W^P`` as ``[B, h, N, r]``."""
        b, n, _ = x.shape
        return self.proj(x).view(b, n, self.num_heads, self.dp_rank).transpose(1, 2)

    @staticmethod
    def forward(logits: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``logits [..., n, r]``, ``k, v [..., n, d]``, ``valid`` bool ``[..., n, 1]`` ->
        ``K_bar, V_bar [..., r, d]`` (fp32); padded positions are masked before the softmax."""
        p = masked_softmax(logits, valid, dim=-2)
        with torch.autocast(device_type=k.device.type, enabled=False):
            p_t = p.transpose(-1, -2).to(torch.promote_types(k.dtype, torch.float32))
            return p_t @ k.to(p_t.dtype), p_t @ v.to(p_t.dtype)


class DualLayerNorm(nn.Module):
    """Separate LayerNorms for the short-range (``LN_S``) and long-range (``LN_L``) keys/values."""

    def __init__(self, head_dims: int):
        super().__init__()
        self.short = nn.LayerNorm(head_dims)
        self.long = nn.LayerNorm(head_dims)

    def forward_short(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.short(k), self.short(v)

    def forward_long(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.long(k), self.long(v)


class LongShortAttentionBase(BaseModule):
    """q/k/v + output projections, dynamic projection and dual LayerNorm of an LS attention layer.

    Subclasses define how the short-range windows are cut. ``dp_rank=0`` turns the long-range
    branch off (then :attr:`dynamic_proj` is None).
    """

    def __init__(self, embed_dims: int, num_heads: int, dp_rank: int, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0., init_cfg: dict | None = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} not divisible by num_heads={num_heads}')
        if dp_rank < 0:
            raise ValueError(f'dp_rank must be >= 0, got {dp_rank}')
        self.embed_dims, self.num_heads, self.dp_rank = embed_dims, num_heads, dp_rank
        self.head_dims = embed_dims // num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.dynamic_proj = DynamicProjection(embed_dims, num_heads, dp_rank) if dp_rank else None
        self.dual_ln = DualLayerNorm(self.head_dims)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def split_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, N, C]`` -> q, k, v ``[B, h, N, d]``."""
        b, n, _ = x.shape
        qkv = self.qkv(x).view(b, n, 3, self.num_heads, self.head_dims).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def merge_heads(self, out: torch.Tensor) -> torch.Tensor:
        """``[B, h, N, d]`` -> projected ``[B, N, C]``."""
        b, _, n, _ = out.shape
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(b, n, self.embed_dims)))

    @property
    def dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, dp_rank={self.dp_rank}'
