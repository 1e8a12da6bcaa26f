"""Long-Short attention over a 2D feature map (Zhu et al., NeurIPS 2021, Sec. 3.4, ViL-LS)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS

from . import ls_attention_kernel as kernel
from .ls_attention_base import (
    LongShortAttentionBase,
    augment_kv,
    augment_queries,
    combine_summary,
    dense_attention,
    shared_key_attention,
    split_heads,
    stack_windows,
    windowed_attention,
)


@MODELS.register_module()
class LSAttention2d(LongShortAttentionBase):
    r"""Long-Short attention for a ``H x W`` map, optionally with global tokens (official:
    ViL-LS ``AttentionLS``).

    ``x [B, G + H*W, C]``: the ``G = num_global_tokens`` global tokens first (e.g. a CLS token),
    then the map in row-major order; ``forward(x, hw_shape=(H, W))`` returns the same shape.
    With ``G = 0`` this is ``x [B, H*W, C]``, as MiT calls it.

    The map is cut into ``w x w`` tiles; a map query in tile ``t`` attends, with ONE softmax,

    .. math::

        \mathrm{out} = \mathrm{softmax}\Big(\frac{Q\,[K^S_{\tilde t}\,;\,\bar K\,;\,K^S_g]^\top}
        {\sqrt d} + [B_{rel}\,;\,0\,;\,0]\Big)\,[V^S_{\tilde t}\,;\,\bar V\,;\,V^S_g],\qquad
        K^S = \mathrm{LN_S}(X W^K),\ \bar K = \mathrm{LN_L}(P^\top K^S_{map}),\
        P = \mathrm{softmax}_{HW}(X_{map} W^P)

    where ``K_t~`` are the keys of the tile plus a halo of ``e = max(w // 2, 1)`` on every side,
    ``K_g`` the global tokens' keys, and ``P`` projects the map to ``r = dp_rank`` vectors per
    head. ``LN_S``, ``LN_L`` are ``LayerNorm(C)`` before the head split (official code).
    Positions outside the map are masked. ``B_rel`` is an optional learned relative position bias
    for the short-range window (one entry per 2D offset key - query and head; the official table
    aliases some offsets, :func:`convert_official_ls_state_dict` converts it exactly). A global
    query attends to ``[K^S_g ; O]`` with values ``[V^S_g ; O]``, ``O`` the map queries' attention
    outputs (official ViL-LS). Cost O(HW (w^2 + r + G)).
    On CPU in fp32 the fused kernel (:mod:`.ls_attention_kernel`) computes it, forward and backward.

    Args:
        embed_dims: channels ``C``.
        num_heads: attention heads.
        window_size: tile side ``w``.
        dp_rank: rank ``r`` of the dynamic projection per head (0: short-range only).
        qkv_bias: bias of the q/k/v projection.
        attn_drop: dropout on the joint attention weights of the map queries.
        proj_drop: dropout after the output projection.
        rel_pos_bias: add a relative position bias to the short-range scores.
        num_global_tokens: ``G``, the number of global tokens leading ``x`` (ViL-LS: 1).
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, dp_rank: int,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 rel_pos_bias: bool = False, num_global_tokens: int = 0,
                 init_cfg: dict | None = None):
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop,
                         init_cfg=init_cfg)
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}')
        if num_global_tokens < 0:
            raise ValueError(f'num_global_tokens must be >= 0, got {num_global_tokens}')
        self.window_size = window_size
        self.halo = max(window_size // 2, 1)
        self.num_global_tokens = num_global_tokens
        self.rel_pos_table = None
        if rel_pos_bias:
            span = 2 * (window_size + self.halo) - 1
            self.rel_pos_table = nn.Parameter(torch.zeros(span * span, num_heads))
            trunc_normal_(self.rel_pos_table, std=.02)
            self.register_buffer('rel_pos_index', self.rel_pos_index_table(window_size),
                                 persistent=False)

    @staticmethod
    def rel_pos_index_table(window_size: int) -> torch.Tensor:
        """``[w^2, K^2]`` row of the bias table for every (tile query, window key) pair: one row
        per 2D offset ``key - query``, ``(dy + w + e - 1) * span + (dx + w + e - 1)``."""
        w, halo = window_size, max(window_size // 2, 1)
        span = 2 * (w + halo) - 1
        qy, qx = torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij')
        ky, kx = torch.meshgrid(*[torch.arange(-halo, w + halo)] * 2, indexing='ij')
        dy = ky.reshape(1, -1) - qy.reshape(-1, 1) + w + halo - 1
        dx = kx.reshape(1, -1) - qx.reshape(-1, 1) + w + halo - 1
        return dy * span + dx

    def forward(self, x: torch.Tensor, hw_shape: tuple[int, int]) -> torch.Tensor:
        """``x [B, G + H*W, C]``, ``hw_shape (H, W)`` -> ``[B, G + H*W, C]``."""
        b, n_all, c = x.shape
        g, (h, w) = self.num_global_tokens, hw_shape
        if n_all != g + h * w:
            raise ValueError(f'x has {n_all} tokens but hw_shape={tuple(hw_shape)} and '
                             f'num_global_tokens={g} need {g + h * w}')
        heads = self.num_heads
        q, kv = self.project(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            shared = []  # keys/values every map query sees: compressed, global
            if self.dynamic_proj is not None:
                shared.append(self.compress(x[:, g:], kv[:, g:]))
            if g:
                shared.append(kv[:, :g])
            shared = torch.cat(shared, 1) if shared else None  # [B, r + G, 2, C]
            bias = self.window_bias()
            if kernel.usable(q, kv, shared, bias, dropout_p=self.dropout_p,
                             differentiable=True):
                out = kernel.window_attention_2d(q, kv, shared, bias, (h, w), heads,
                                                 self.window_size, self.halo, self.scale)
                out = out.view(b, n_all, heads, -1)[:, g:]
            else:
                out = self.map_attention(q[:, g:], kv[:, g:], shared, (h, w))
            if g:  # global queries: the global keys, then the map outputs as keys and values
                out_heads = out.transpose(1, 2)
                k_g, v_g = (split_heads(t, heads) for t in kv[:, :g].unbind(2))
                out_g = dense_attention(split_heads(q[:, :g], heads) * self.scale,
                                        torch.cat([k_g, out_heads], 2),
                                        torch.cat([v_g, out_heads], 2))
                out = torch.cat([out_g.transpose(1, 2), out], 1)
            out = out.reshape(b, n_all, c)
        return self.output(out, x.dtype)

    def window_bias(self) -> torch.Tensor | None:
        """The relative position bias of the window scores ``[heads, w^2, (w + 2e)^2]``."""
        if self.rel_pos_table is None:
            return None
        return self.rel_pos_table[self.rel_pos_index].permute(2, 0, 1)

    def map_attention(self, q: torch.Tensor, kv: torch.Tensor, shared: torch.Tensor | None,
                      hw_shape: tuple[int, int]) -> torch.Tensor:
        """The autograd path of the map queries: ``q [B, HW, C]``, ``kv [B, HW, 2, C]``,
        ``shared [B, m, 2, C]`` -> ``[B, HW, heads, d]``. The shared keys enter every window as
        one summary key (:func:`~.ls_attention_base.shared_key_attention`)."""
        (b, _, _), (h, w) = q.shape, hw_shape
        ws, halo, heads = self.window_size, self.halo, self.num_heads
        tiles_h, tiles_w = math.ceil(h / ws), math.ceil(w / ws)
        pad_h, pad_w = tiles_h * ws - h, tiles_w * ws - w
        size, tiles = ws + 2 * halo, tiles_h * tiles_w
        long_out = lse = None
        if shared is not None:
            long_out, lse = shared_key_attention(q, shared[:, :, 0], shared[:, :, 1], heads,
                                                 self.scale)
            long_out, lse = long_out.transpose(1, 2), lse.transpose(1, 2)  # [B, HW, h, .]

        # Tiles in the layout [B * tiles, heads, w*w | window + summary, d + 2].
        def per_pixel(t: torch.Tensor) -> torch.Tensor:  # [B, HW, *] -> [B, H, W, h, *]
            return t.reshape(b, h, w, heads, -1)

        def tiled(t: torch.Tensor) -> torch.Tensor:  # [B, H, W, h, *] -> tiles (a view)
            t = F.pad(t, (0, 0, 0, 0, 0, pad_w, 0, pad_h)) if pad_h or pad_w else t
            return t.view(b, tiles_h, ws, tiles_w, ws, heads, -1).permute(0, 1, 3, 5, 2, 4, 6)

        q_aug = augment_queries(tiled(per_pixel(q)),
                                None if lse is None else tiled(per_pixel(lse)), self.scale)
        q_aug = q_aug.view(b * tiles, heads, ws * ws, -1)
        inside = torch.zeros(h + pad_h + 2 * halo, w + pad_w + 2 * halo, dtype=torch.bool,
                             device=q.device)
        inside[halo:halo + h, halo:halo + w] = True
        summary = lse is not None
        # keys/values head-major [B, h, H, W, d + 2]: a window row is one contiguous run
        k_aug, v_aug = augment_kv(*(per_pixel(t).permute(0, 3, 1, 2, 4) for t in kv.unbind(2)),
                                  inside, pad=(halo, pad_w + halo, halo, pad_h + halo))
        k_win, v_win = (  # [B, tiles_h, tiles_w, h, size, size, d + 2] views, stacked
            stack_windows(t.unfold(2, size, ws).unfold(3, size, ws).permute(
                0, 2, 3, 1, 5, 6, 4), (b * tiles, heads), summary, value)
            for t, value in ((k_aug, False), (v_aug, True)))
        bias = self.window_bias()
        if bias is not None:
            bias = F.pad(bias.to(q_aug), (0, int(summary)))[None]  # the summary key: no bias

        out = windowed_attention(q_aug, k_win, v_win, self.scale, bias, self.dropout_p)
        out = out.view(b, tiles_h, tiles_w, heads, ws, ws, -1).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(b, tiles_h * ws, tiles_w * ws, heads, -1)[:, :h, :w]
        return combine_summary(out.reshape(b, h * w, heads, -1), long_out)  # [B, HW, h, d]

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, window_size={self.window_size}, '
                f'rel_pos_bias={self.rel_pos_table is not None}, '
                f'num_global_tokens={self.num_global_tokens}')
