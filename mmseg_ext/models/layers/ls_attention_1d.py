"""Bidirectional Long-Short attention over a 1D sequence (Zhu et al., NeurIPS 2021, Sec. 3)."""
import math

import torch
from mmengine.registry import MODELS

from .ls_attention_base import (
    LongShortAttentionBase,
    augment_kv,
    augment_queries,
    combine_summary,
    merge_heads,
    split_heads,
    stack_windows,
    summary_attention,
    windowed_attention,
)


@MODELS.register_module()
class LSAttention1d(LongShortAttentionBase):
    r"""Long-Short attention for ``x [B, N, C]``, any ``N`` (official: LRA ``AttentionLS``).

    For a query in segment ``s`` (positions ``[s w, (s + 1) w)``) and every head

    .. math::

        \mathrm{out} = \mathrm{softmax}\Big(\frac{Q\,[K^S_{\tilde s}\,;\,\bar K]^\top}
        {\sqrt d}\Big)\,[V^S_{\tilde s}\,;\,\bar V],\qquad
        K^S = \mathrm{LN_S}(X W^K),\ \bar K = \mathrm{LN_L}(P^\top K^S),\
        P = \mathrm{softmax}_n(X W^P)

    (likewise for ``V``). ``LN_S`` and ``LN_L`` are ``LayerNorm(C)`` over all channels, before the
    head split, and the dynamic projection compresses the normalised ``K^S`` -- the official
    code; the paper's Eq. (4) applies ``LN_L`` to ``P^T K`` of the raw keys. ``K_s~`` are the
    keys of positions ``[s w - e, (s + 1) w + e)``, ``e = max(w // 2, 1)`` (the segment plus
    ``e`` tokens each side) and ``P`` is ``N x r`` (``r = dp_rank``). Padded positions
    (``key_padding_mask`` True) are masked in the windows and in the softmax of ``P``, and their
    outputs are the output projection's bias, as in the official code. ``dp_rank=0`` drops the
    long-range branch. Cost O(N (w + r)) time and memory.

    Args:
        embed_dims: channels ``C``.
        num_heads: attention heads; ``d = C / num_heads``.
        window_size: segment length ``w``.
        dp_rank: rank ``r`` of the dynamic projection per head (0: short-range only).
        qkv_bias: bias of the q/k/v projection.
        attn_drop: dropout on the joint attention weights.
        proj_drop: dropout after the output projection.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, dp_rank: int,
                 qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 init_cfg: dict | None = None):
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop,
                         init_cfg=init_cfg)
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}')
        self.window_size = window_size
        self.halo = max(window_size // 2, 1)

    def forward(self, x: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, C]``, ``key_padding_mask [B, N]`` (True = pad) -> ``[B, N, C]``."""
        b, n, _ = x.shape
        w, halo, h = self.window_size, self.halo, self.num_heads
        segs = math.ceil(n / w)
        pad = segs * w - n
        if key_padding_mask is not None and key_padding_mask.shape != (b, n):
            raise ValueError(f'key_padding_mask of shape {tuple(key_padding_mask.shape)} does not '
                             f'match x [B, N] = {(b, n)}')
        valid = None if key_padding_mask is None else ~key_padding_mask.bool()

        q, k, v = self.project(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            qh = split_heads(q, h)
            long_out = lse = None
            if self.dynamic_proj is not None:
                long_out, lse = summary_attention(qh * self.scale,
                                                  *self.compress(x, k, v, valid))

            key_ok = torch.zeros(n + pad + 2 * halo, dtype=torch.bool, device=x.device)
            key_ok[halo:halo + n] = True
            if valid is not None:
                key_ok = key_ok.expand(b, -1).clone()
                key_ok[:, halo:halo + n] = valid
                key_ok = key_ok[:, None]
            k_aug, v_aug = augment_kv(split_heads(k, h), split_heads(v, h), key_ok,
                                      pad=(halo, pad + halo))
            size = w + 2 * halo
            summary = lse is not None
            k_win, v_win = (stack_windows(t.unfold(2, size, w).transpose(-1, -2), (b * h, segs),
                                          summary, value) for t, value in ((k_aug, False),
                                                                           (v_aug, True)))
            q_aug = augment_queries(qh, lse, self.scale, pad=(0, pad)).view(b * h, segs, w, -1)
            out = windowed_attention(q_aug, k_win, v_win, self.scale, dropout_p=self.dropout_p)
            out = combine_summary(out.view(b, h, segs * w, -1)[:, :, :n], long_out)
            out = merge_heads(out)
            if valid is not None:
                out = out.masked_fill(~valid[..., None], 0)
        return self.output(out, x.dtype)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, window_size={self.window_size}'
