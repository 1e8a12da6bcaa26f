"""Autoregressive Long-Short attention (Zhu et al., NeurIPS 2021, Sec. 3.3; official:
``autoregressive/model_lib/layer.py``, ``ChunkedLSAttention``)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from .ls_attention_base import NEG, LongShortAttentionBase, merge_heads, split_heads


def sinusoid(positions: torch.Tensor, dims: int) -> torch.Tensor:
    """Transformer-XL position embedding ``[sin(p f), cos(p f)]``, ``f_i = 10000^(-2i / dims)``."""
    inv_freq = 10000 ** (-torch.arange(0, dims, 2, device=positions.device) / dims)
    angles = positions.to(inv_freq.dtype)[:, None] * inv_freq
    return torch.cat([angles.sin(), angles.cos()], -1)


@MODELS.register_module()
class CausalLSAttention1d(LongShortAttentionBase):
    r"""Causal Long-Short attention for ``x [B, N, C]``, parallel over the sequence, with an
    optional Transformer-XL memory of earlier tokens.

    Query ``t`` attends, with ONE softmax,

    * short range: the causal window ``{j : t - w < j <= t}`` (``w = window_size``, itself
      included), reaching into ``memory`` (the previous tokens' inputs of this layer);
      keys/values ``LN_S(X W^K)``, ``LN_S(X W^V)``;
    * long range: the compressed vectors of every segment ``g`` (``l = segment_size``) that ends
      before ``t``'s own segment (``g < t // l``) and of every memory segment. Segment ``g`` is
      compressed inside itself, ``P_g = softmax over its l positions of (X_g W^P)``,
      ``K_bar_g = LN_L(P_g^T X_g W^K)`` -- the official code compresses the raw keys (the 1D/2D
      modules compress ``LN_S(K)``). A memory segment is compressed as the official code does:
      head ``i``'s ``P_i`` compresses the ``i``-th ``d``-channel slice of the raw memory input,
      and the compressed inputs are then projected, ``K_bar = LN_L(W^K [P_1^T M_1, ...] + b)``.
      With one head this equals ``P^T M W^K``; with several it is not the per-head compression of
      the in-block segments (docs/ls_attention.md, measured there).

    ``LN_S`` and ``LN_L`` are ``LayerNorm(C)`` over all channels. With ``rel_pos`` the scores get
    the official relative-position terms (Transformer-XL): window
    ``(q + u) k^T + (q + v) R_{t - j}^T`` with ``R_delta = W^R sin(delta)``; long range
    ``q K_bar^T + q S_p^T``, ``S_p = W^S sin(p) + b^S``, ``p = r (c_q - c_k) - 1 - i`` for the
    ``i``-th compressed vector of segment ``c_k`` seen from segment ``c_q`` (``q`` already divided
    by ``sqrt(d)``).

    Memory: scores of size ``N x (w + #compressed)`` and one more of that size with ``rel_pos``;
    no copy of the compressed keys per window and no mask of the scores' size.

    Args:
        embed_dims: channels ``C``.
        num_heads: attention heads.
        window_size: causal window ``w``.
        segment_size: segment length ``l`` of the long-range compression.
        dp_rank: compressed vectors ``r`` per segment and head (0: short-range only).
        qkv_bias: bias of the q/k/v projection (official: False).
        attn_drop: dropout on the joint attention weights.
        proj_drop: dropout after the output projection.
        proj_bias: bias of the output projection (official: False).
        rel_pos: add the relative-position terms.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, segment_size: int,
                 dp_rank: int, qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 proj_bias: bool = True, rel_pos: bool = False, init_cfg: dict | None = None):
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop,
                         proj_bias, init_cfg)
        if window_size < 1 or segment_size < 1:
            raise ValueError(f'window_size={window_size} and segment_size={segment_size} '
                             'must be >= 1')
        if rel_pos and embed_dims % 2:
            raise ValueError(f'rel_pos needs an even embed_dims, got {embed_dims}')
        self.window_size, self.segment_size = window_size, segment_size
        self.rel_pos = rel_pos
        if rel_pos:
            self.rel_pos_proj = nn.Linear(embed_dims, embed_dims, bias=False)
            self.rel_pos_proj_long = nn.Linear(embed_dims, embed_dims)
            self.rel_content_bias = nn.Parameter(torch.zeros(num_heads, self.head_dims))
            self.rel_pos_bias = nn.Parameter(torch.zeros(num_heads, self.head_dims))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, C]``, ``memory [B, M, C]`` (the inputs of this layer at the ``M``
        preceding positions, ``M`` a multiple of ``segment_size``) -> ``[B, N, C]``. Output
        ``t`` depends on ``memory`` and ``x[:, :t + 1]`` only."""
        b, n, c = x.shape
        w, seg, h = self.window_size, self.segment_size, self.num_heads
        mem_len = 0 if memory is None else memory.shape[1]
        if memory is not None and (memory.dim() != 3 or memory.shape[::2] != (b, c)):
            raise ValueError(f'memory of shape {tuple(memory.shape)} does not match x {(b, n, c)}'
                             ': expected [B, M, C]')
        if mem_len % seg:
            raise ValueError(f'memory length {mem_len} is not a multiple of segment_size={seg}')
        unit = math.lcm(w, seg)  # queries are padded to whole windows and segments
        n_pad = math.ceil(n / unit) * unit
        x = F.pad(x, (0, 0, 0, n_pad - n))

        q, k, v = self.qkv(x).chunk(3, dim=-1)
        k_s, v_s = self.dual_ln.short(k), self.dual_ln.short(v)
        if mem_len:  # keys of the last w memory tokens, for the first windows
            k_m, v_m = F.linear(memory[:, -w:], self.qkv.weight[c:],
                                None if self.qkv.bias is None else self.qkv.bias[c:]).chunk(2, -1)
            k_s = torch.cat([self.dual_ln.short(k_m), k_s], 1)
            v_s = torch.cat([self.dual_ln.short(v_m), v_s], 1)

        with torch.autocast(device_type=x.device.type, enabled=False):
            dtype = torch.promote_types(q.dtype, torch.float32)
            q = split_heads(q.to(dtype), h) * self.scale
            parts = [self.window_scores(q, k_s.to(dtype), v_s.to(dtype), min(mem_len, w))]
            if self.dynamic_proj is not None:
                k_l, v_l = self.compress_segments(x, k.to(dtype), v.to(dtype), memory)
                parts.append((self.long_scores(q, k_l, mem_len // seg), v_l))
            out = self.joint_softmax(parts)[:, :, :n]
        return self.output(merge_heads(out), x.dtype)

    def compress_segments(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          memory: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``LN_L``-normalised compressed keys/values ``[B, h, (G_mem + G) r, d]``: the memory
        segments first (official input-slice compression), then the ``G`` segments of ``x``."""
        b, n, c = x.shape
        seg, h = self.segment_size, self.num_heads

        def per_segment(t: torch.Tensor) -> torch.Tensor:  # [B, G l, C] -> [B, h, G, l, d]
            return t.reshape(b, -1, seg, h, c // h).permute(0, 3, 1, 2, 4)

        p_t = self.dynamic_proj.weights(x, segment=seg)  # [B, h, G, r, l]
        k_l, v_l = ((p_t @ per_segment(t)).flatten(2, 3) for t in (k, v))
        if memory is not None and memory.shape[1]:
            m = memory.to(p_t.dtype)
            m = self.dynamic_proj.weights(m, segment=seg) @ per_segment(m)  # [B, h, Gm, r, d]
            m = merge_heads(m.flatten(2, 3))  # [B, Gm r, C]: head i compressed input slice i
            bias = None if self.qkv.bias is None else self.qkv.bias[c:].to(m.dtype)
            k_m, v_m = F.linear(m, self.qkv.weight[c:].to(m.dtype), bias).chunk(2, -1)
            k_l = torch.cat([split_heads(k_m, h), k_l], 2)
            v_l = torch.cat([split_heads(v_m, h), v_l], 2)
        return self.dual_ln.long_heads(k_l), self.dual_ln.long_heads(v_l)

    def window_scores(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      lead: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``[B, h, T, w, 2w]`` of the query blocks of ``w`` against the keys
        ``[(j - 1) w, (j + 1) w)``, masked to the causal window, and the value windows.
        ``k, v [B, lead + N, C]`` start with ``lead`` memory tokens."""
        b, h, n, d = q.shape
        w = self.window_size
        blocks = n // w
        k, v = (F.pad(split_heads(t, h), (0, 0, w - lead, 0)) for t in (k, v))
        query = q if not self.rel_pos else q + self.rel_content_bias[:, None]
        scores = query.view(b, h, blocks, w, d) @ k.unfold(2, 2 * w, w)
        if self.rel_pos:  # (q + v) R_{t - j}^T, laid onto the windows by a skewed view
            rel = sinusoid(torch.arange(w - 1, -1, -1, device=q.device), self.embed_dims)
            rel = split_heads(self.rel_pos_proj(rel.to(q))[None], h)  # [1, h, w, d]
            pos = F.pad(q + self.rel_pos_bias[:, None], (0, 0, 1, 0)) @ rel.transpose(-1, -2)
            scores += pos.as_strided((b, h, blocks, w, 2 * w),
                                     (pos.stride(0), pos.stride(1), w * w, w - 1, 1),
                                     pos.storage_offset() + w - 1)
        i, m = torch.arange(w, device=q.device)[:, None], torch.arange(2 * w, device=q.device)
        scores.masked_fill_((m <= i) | (m > i + w), NEG)  # outside (t - w, t]
        if lead < w:
            scores[:, :, 0, :, :w - lead] = NEG  # before the memory
        return scores, v.unfold(2, 2 * w, w).transpose(-1, -2)

    def long_scores(self, q: torch.Tensor, k: torch.Tensor, mem_segs: int) -> torch.Tensor:
        """Scores ``[B, h, N, (G_mem + G) r]`` of every query against the compressed keys,
        masked to the memory and the segments before the query's own."""
        b, h, n, d = q.shape
        seg, r = self.segment_size, self.dp_rank
        segs, cols = n // seg, k.shape[2]
        scores = q @ k.transpose(-1, -2)
        if self.rel_pos:  # q S_p^T with p = r (c_q - c_k) - 1 - i, by a skewed view
            rel = sinusoid(torch.arange(cols - 1, -1, -1, device=q.device), self.embed_dims)
            rel = split_heads(self.rel_pos_proj_long(rel.to(q))[None], h)  # [1, h, cols, d]
            pos = F.pad(q, (0, 0, 0, 1)) @ rel.transpose(-1, -2)  # one more row: in bounds
            scores.view(b, h, segs, seg, cols).add_(pos.as_strided(
                (b, h, segs, seg, cols), (pos.stride(0), pos.stride(1), seg * cols - r, cols, 1),
                pos.storage_offset() + r * segs))
        seen = torch.arange(cols, device=q.device) < r * (
            mem_segs + torch.arange(segs, device=q.device))[:, None]
        scores.view(b, h, segs, seg, cols).masked_fill_(~seen[:, None], NEG)
        return scores

    def joint_softmax(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """ONE softmax over all parts' scores (in place), times their values: ``[B, h, N, d]``.
        ``parts``: ``(scores, values)`` whose scores' rows flatten to the ``N`` queries."""
        b, h, n = parts[0][0].shape[0], parts[0][0].shape[1], parts[0][0].shape[2:-1].numel()
        peak = torch.stack([s.detach().view(b, h, n, -1).amax(-1) for s, _ in parts]).amax(0)
        total, out = 0, 0
        for scores, values in parts:
            scores.sub_(peak.view(*scores.shape[:-1], 1)).exp_()
            total = total + scores.sum(-1).view(b, h, n, 1)
            probs = F.dropout(scores, self.dropout_p, self.training)
            out = out + (probs @ values).view(b, h, n, -1)
        return out / total

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, window_size={self.window_size}, '
                f'segment_size={self.segment_size}, rel_pos={self.rel_pos}')
