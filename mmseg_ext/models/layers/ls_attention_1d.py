"""Bidirectional Long-Short attention over a 1D sequence (Zhu et al., NeurIPS 2021, Sec. 3)."""
import math

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from .ls_attention_base import LongShortAttentionBase, joint_attention


@MODELS.register_module()
class LSAttention1d(LongShortAttentionBase):
    r"""Long-Short attention for ``x [B, N, C]``, any ``N``.

    For a query in segment ``s`` (positions ``[s w, (s + 1) w)``) and every head

    .. math::

        \mathrm{out} = \mathrm{softmax}\Big(\frac{Q\,[\mathrm{LN_S}(K_{\tilde s})\,;
        \,\mathrm{LN_L}(\bar K)]^\top}{\sqrt d}\Big)\,
        [\mathrm{LN_S}(V_{\tilde s})\,;\,\mathrm{LN_L}(\bar V)],\qquad
        \bar K = P^\top K,\ \bar V = P^\top V,\ P = \mathrm{softmax}_n(X W^P)

    where ``K_s~`` are the keys of positions ``[s w - w//2, (s + 1) w + w//2)`` (the segment plus
    ``w//2`` tokens each side, Sec. 3.1) and ``P`` is ``N x r`` (``r = dp_rank``). Padded
    positions (``key_padding_mask`` True, or the internal padding up to a multiple of ``w``) are
    masked in both the window and the softmax of ``P``. ``dp_rank=0`` drops the long-range
    branch. Cost O(N (w + r)) time and memory.

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
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop, init_cfg)
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}')
        self.window_size = window_size

    def forward(self, x: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, C]``, ``key_padding_mask [B, N]`` (True = pad) -> ``[B, N, C]``."""
        b, n, _ = x.shape
        w, halo = self.window_size, self.window_size // 2
        segs = math.ceil(n / w)
        pad = segs * w - n
        valid = (torch.ones(b, n, dtype=torch.bool, device=x.device) if key_padding_mask is None
                 else ~key_padding_mask.bool())

        q, k, v = self.split_qkv(x)
        q = F.pad(q, (0, 0, 0, pad)).unflatten(2, (segs, w))
        k_s, v_s = (F.pad(t, (0, 0, halo, pad + halo)).unfold(2, w + 2 * halo, w).transpose(-1, -2)
                    for t in self.dual_ln.forward_short(k, v))
        allowed = F.pad(valid, (halo, pad + halo)).unfold(1, w + 2 * halo, w)[:, None, :, None]

        if self.dynamic_proj is not None:
            k_l, v_l = self.dual_ln.forward_long(*self.dynamic_proj(
                self.dynamic_proj.logits(x), k, v, valid[:, None, :, None]))
            k_s = torch.cat([k_s, k_l[:, :, None].expand(-1, -1, segs, -1, -1).to(k_s)], dim=3)
            v_s = torch.cat([v_s, v_l[:, :, None].expand(-1, -1, segs, -1, -1).to(v_s)], dim=3)
            long_ok = valid.any(1)[:, None, None, None, None].expand(-1, 1, segs, 1, self.dp_rank)
            allowed = torch.cat([allowed, long_ok], dim=-1)

        out = joint_attention(q, k_s, v_s, allowed, dropout_p=self.dropout_p)
        return self.merge_heads(out.flatten(2, 3)[:, :, :n])

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, window_size={self.window_size}'
