"""Attention-to-mask: multi-scale cross-attention whose logits are the mask (paper Sec. 3.4)."""
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AttentionToMask(nn.Module):
    """Cross-attention from queries to multi-scale memory that also predicts a mask per query.

    The attention logits ``A = Q K^T / sqrt(d)`` (before softmax) of each level are reshaped to
    ``(h_l, w_l, heads)``, mapped by a per-level ``Linear(heads, heads) + ReLU``, upsampled to the
    first (stride 8) level, concatenated over levels and fused by ``Linear(levels * heads, 1) +
    ReLU`` into one non-negative mask per query (paper Eq. 4, Fig. 4).

    Args:
        embed_dims (int): Query / memory width.
        num_heads (int): Attention heads.
        num_levels (int): Memory levels the mask is built from (strides 8, 16, 32).
        with_value (bool): Also return the attended values (``softmax(A) V``). The last,
            mask-only stage of a mask decoder has no value path.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 3,
                 with_value: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (embed_dims // num_heads) ** -0.5
        self.with_value = with_value
        self.q = nn.Linear(embed_dims, embed_dims)
        self.k = nn.Linear(embed_dims, embed_dims)
        if with_value:
            self.v = nn.Linear(embed_dims, embed_dims)
            self.proj = nn.Linear(embed_dims, embed_dims)
        self.level_fcs = nn.ModuleList(
            nn.Sequential(nn.Linear(num_heads, num_heads), nn.ReLU()) for _ in range(num_levels))
        self.fuse = nn.Sequential(nn.Linear(num_heads * num_levels, 1), nn.ReLU())

    def _split_heads(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def logits_to_mask(self, logits: Tensor, hw_levels: Sequence[tuple[int, int]]) -> Tensor:
        """Fuse per-level, per-head logits ``(B, heads, N, L)`` into masks ``(B, N, h0, w0)``."""
        b, heads, n, _ = logits.shape
        size0 = tuple(hw_levels[0])
        sizes = [h * w for h, w in hw_levels]
        per_level = []
        for fc, (h, w), part in zip(self.level_fcs, hw_levels, logits.split(sizes, dim=-1)):
            part = fc(part.permute(0, 2, 3, 1))  # (B, N, h*w, heads)
            part = part.reshape(b * n, h, w, heads).permute(0, 3, 1, 2)
            if (h, w) != size0:
                part = F.interpolate(part, size=size0, mode='bilinear', align_corners=False)
            per_level.append(part)
        fused = self.fuse(torch.cat(per_level, dim=1).permute(0, 2, 3, 1))  # (B*N, h0, w0, 1)
        return fused.reshape(b, n, *size0)

    def forward(self, query: Tensor, memory: Tensor,
                hw_levels: Sequence[tuple[int, int]]) -> tuple[Tensor | None, Tensor]:
        """Return ``(attended values (B, N, C) or None, mask (B, N, h0, w0))``.

        ``memory`` is ``(B, L, C)`` with ``L = sum(h_l * w_l)``. Like the official ``Attention``
        (which receives the key padding mask but does not use it), the softmax runs over every
        key, padded ones included.
        """
        logits = self._split_heads(self.q(query)) @ self._split_heads(self.k(memory)).transpose(
            -2, -1) * self.scale
        mask = self.logits_to_mask(logits, hw_levels)
        if not self.with_value:
            return None, mask
        attn = logits.softmax(dim=-1)
        out = (attn @ self._split_heads(self.v(memory))).transpose(1, 2).flatten(2)
        return self.proj(out), mask
