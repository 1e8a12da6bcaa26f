"""Autoregressive Long-Short attention (Zhu et al., NeurIPS 2021, Sec. 3.3)."""
import math

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from .ls_attention_base import LongShortAttentionBase, joint_attention


@MODELS.register_module()
class CausalLSAttention1d(LongShortAttentionBase):
    r"""Causal Long-Short attention for ``x [B, N, C]``, parallel over the sequence.

    Query ``t`` attends, with ONE softmax and the dual LayerNorm of :class:`LSAttention1d`,

    * short range: the causal window ``{j : t - window_size < j <= t}`` (its last
      ``window_size`` tokens, itself included);
    * long range: the compressed vectors of every segment ``g`` (positions
      ``[g l, (g + 1) l)``, ``l = segment_size``) that ends before ``t``, i.e. ``(g + 1) l <= t``,
      equivalently ``g < t // l``: whole segments strictly before the query's own segment
      (Sec. 3.3).
      Segment ``g`` is compressed by a dynamic projection computed inside that segment only,
      ``P_g = softmax over the l positions of (X_g W^P)``, ``K_bar_g = P_g^T K_g`` (r x d), so no
      compressed vector depends on a token at or after ``t``.

    Cost O(N w) for the window plus O(N (N / l) r) for the compressed vectors (the paper's
    setting: small ``r``, e.g. ``l = 16, r = 1``). ``dp_rank=0`` drops the long-range branch.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, segment_size: int,
                 dp_rank: int, qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 init_cfg: dict | None = None):
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop, init_cfg)
        if window_size < 1 or segment_size < 1:
            raise ValueError(f'window_size={window_size} and segment_size={segment_size} '
                             'must be >= 1')
        self.window_size, self.segment_size = window_size, segment_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, N, C]`` -> ``[B, N, C]``; output ``t`` depends on ``x[:, :t + 1]`` only."""
        b, n, _ = x.shape
        w = self.window_size
        blocks = math.ceil(n / w)
        pad = blocks * w - n

        # Queries in blocks of w; block j sees keys [(j - 1) w, (j + 1) w), masked to the window.
        q, k, v = self.split_qkv(x)
        q = F.pad(q, (0, 0, 0, pad)).unflatten(2, (blocks, w))
        k_s, v_s = (F.pad(t, (0, 0, w, pad)).unfold(2, 2 * w, w).transpose(-1, -2)
                    for t in self.dual_ln.forward_short(k, v))
        pos_q = torch.arange(blocks * w, device=x.device).view(blocks, w, 1)
        pos_k = (torch.arange(blocks, device=x.device).view(blocks, 1, 1) * w
                 + torch.arange(-w, w, device=x.device))
        allowed = (pos_k <= pos_q) & (pos_k > pos_q - w) & (pos_k >= 0)

        if self.dynamic_proj is not None:
            k_l, v_l, seg_of = self.compress_segments(x, k, v)
            k_s = torch.cat([k_s, k_l[:, :, None].expand(-1, -1, blocks, -1, -1).to(k_s)], dim=3)
            v_s = torch.cat([v_s, v_l[:, :, None].expand(-1, -1, blocks, -1, -1).to(v_s)], dim=3)
            allowed = torch.cat([allowed, seg_of < pos_q // self.segment_size], dim=-1)

        out = joint_attention(q, k_s, v_s, allowed, dropout_p=self.dropout_p)
        return self.merge_heads(out.flatten(2, 3)[:, :, :n])

    def compress_segments(self, x: torch.Tensor, k: torch.Tensor,
                          v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-segment dynamic projection: ``K_bar, V_bar [B, h, G r, d]`` and the segment index
        ``[G r]`` of every compressed vector (``G = ceil(N / l)``; the last one may be partial)."""
        n, l, r = x.shape[1], self.segment_size, self.dp_rank
        segs = math.ceil(n / l)
        pad = segs * l - n
        logits = F.pad(self.dynamic_proj.logits(x), (0, 0, 0, pad)).unflatten(2, (segs, l))
        k, v = (F.pad(t, (0, 0, 0, pad)).unflatten(2, (segs, l)) for t in (k, v))
        valid = (torch.arange(segs * l, device=x.device) < n).view(segs, l, 1)
        k_l, v_l = self.dual_ln.forward_long(*self.dynamic_proj(logits, k, v, valid))
        seg_of = torch.arange(segs * r, device=x.device) // r
        return k_l.flatten(2, 3), v_l.flatten(2, 3), seg_of

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, window_size={self.window_size}, '
                f'segment_size={self.segment_size}')
