"""Long-Short attention over a 2D feature map (Zhu et al., NeurIPS 2021, Sec. 3.4, ViL-LS)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS

from .ls_attention_base import LongShortAttentionBase, joint_attention


@MODELS.register_module()
class LSAttention2d(LongShortAttentionBase):
    r"""Long-Short attention for ``x [B, H*W, C]`` with ``hw_shape = (H, W)``, any H and W.

    The map is cut into ``w x w`` tiles; a query in tile ``(i, j)`` attends, with ONE softmax,

    .. math::

        \mathrm{out} = \mathrm{softmax}\Big(\frac{Q\,[\mathrm{LN_S}(K_{\tilde t})\,;
        \,\mathrm{LN_L}(\bar K)]^\top}{\sqrt d} + [B_{rel}\,;\,0]\Big)\,
        [\mathrm{LN_S}(V_{\tilde t})\,;\,\mathrm{LN_L}(\bar V)],\qquad
        \bar K = P^\top K,\ P = \mathrm{softmax}_{HW}(X W^P)

    where ``K_t~`` are the keys of the tile plus a ``w//2`` halo on every side (rows
    ``[i w - w//2, (i + 1) w + w//2)``, likewise columns) and ``P`` projects the whole image to
    ``r = dp_rank`` vectors per head. Positions outside the image are masked. ``B_rel`` is an
    optional learned relative position bias for the short-range window (one table per head,
    indexed by the 2D offset key - query). Cost O(HW (w^2 + r)).

    Args:
        embed_dims: channels ``C``.
        num_heads: attention heads.
        window_size: tile side ``w``.
        dp_rank: rank ``r`` of the dynamic projection per head (0: short-range only).
        qkv_bias: bias of the q/k/v projection.
        attn_drop: dropout on the joint attention weights.
        proj_drop: dropout after the output projection.
        rel_pos_bias: add a relative position bias to the short-range scores.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, dp_rank: int,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 rel_pos_bias: bool = False, init_cfg: dict | None = None):
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop, init_cfg)
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}')
        self.window_size = window_size
        self.halo = window_size // 2
        self.rel_pos_table = None
        if rel_pos_bias:
            span = 2 * (window_size + self.halo) - 1
            self.rel_pos_table = nn.Parameter(torch.zeros(span * span, num_heads))
            trunc_normal_(self.rel_pos_table, std=.02)
            self.register_buffer('rel_pos_index', self._rel_pos_index(), persistent=False)

    def _rel_pos_index(self) -> torch.Tensor:
        """``[w^2, K^2]`` index into the bias table of every (tile query, window key) pair."""
        w, halo = self.window_size, self.halo
        span = 2 * (w + halo) - 1
        qy, qx = torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij')
        ky, kx = torch.meshgrid(*[torch.arange(w + 2 * halo)] * 2, indexing='ij')
        dy = ky.reshape(1, -1) - qy.reshape(-1, 1) + w - 1
        dx = kx.reshape(1, -1) - qx.reshape(-1, 1) + w - 1
        return dy * span + dx

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        """``x [B, H*W, C]``, ``hw_shape (H, W)`` -> ``[B, H*W, C]``."""
        b, n, _ = x.shape
        h, w = hw_shape
        if n != h * w:
            raise ValueError(f'x has {n} tokens but hw_shape={tuple(hw_shape)}')
        ws, halo = self.window_size, self.halo
        tiles_h, tiles_w = math.ceil(h / ws), math.ceil(w / ws)
        pad_h, pad_w = tiles_h * ws - h, tiles_w * ws - w

        def to_tiles(t: torch.Tensor) -> torch.Tensor:  # [B, h, HW, d] -> [B, h, T, w*w, d]
            t = F.pad(t.unflatten(2, (h, w)), (0, 0, 0, pad_w, 0, pad_h))
            t = t.unflatten(2, (tiles_h, ws)).unflatten(4, (tiles_w, ws))
            return t.transpose(3, 4).flatten(4, 5).flatten(2, 3)

        def to_windows(t: torch.Tensor) -> torch.Tensor:  # [..., HW, d] -> [..., T, K*K, d]
            t = F.pad(t.unflatten(-2, (h, w)), (0, 0, halo, pad_w + halo, halo, pad_h + halo))
            t = t.unfold(-3, ws + 2 * halo, ws).unfold(-3, ws + 2 * halo, ws)
            return t.flatten(-2, -1).flatten(-4, -3).transpose(-1, -2)

        q, k, v = self.split_qkv(x)
        q = to_tiles(q)
        k_s, v_s = (to_windows(t) for t in self.dual_ln.forward_short(k, v))
        inside = torch.ones(1, 1, n, 1, dtype=torch.bool, device=x.device)
        allowed = to_windows(inside).transpose(-1, -2)  # [1, 1, T, 1, K*K]
        bias = None
        if self.rel_pos_table is not None:
            bias = self.rel_pos_table[self.rel_pos_index].permute(2, 0, 1)[None, :, None]

        if self.dynamic_proj is not None:
            tiles = q.shape[2]
            k_l, v_l = self.dual_ln.forward_long(*self.dynamic_proj(
                self.dynamic_proj.logits(x), k, v, inside))
            k_s = torch.cat([k_s, k_l[:, :, None].expand(-1, -1, tiles, -1, -1).to(k_s)], dim=3)
            v_s = torch.cat([v_s, v_l[:, :, None].expand(-1, -1, tiles, -1, -1).to(v_s)], dim=3)
            allowed = F.pad(allowed, (0, self.dp_rank), value=True)
            if bias is not None:
                bias = F.pad(bias, (0, self.dp_rank))

        out = joint_attention(q, k_s, v_s, allowed, bias, dropout_p=self.dropout_p)
        out = out.unflatten(3, (ws, ws)).unflatten(2, (tiles_h, tiles_w)).transpose(3, 4)
        out = out.flatten(4, 5).flatten(2, 3)[:, :, :h, :w].flatten(2, 3)
        return self.merge_heads(out)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, window_size={self.window_size}, '
                f'rel_pos_bias={self.rel_pos_table is not None}')
