"""Autoregressive Long-Short attention (Zhu et al., NeurIPS 2021, Sec. 3.3; official:
``autoregressive/model_lib/layer.py``, ``ChunkedLSAttention``)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS

from . import ls_attention_kernel as kernel
from .ls_attention_base import (
    NEG,
    LongShortAttentionBase,
    compute_dtype,
    merge_heads,
    merge_softmax_parts,
    softmax_lse,
    split_heads,
)


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

    The queries go in groups of about ``query_group`` (1024): scores of at most
    ``1024 x (2w + #compressed)`` per head at a time (twice with ``rel_pos``), compressed keys
    that a whole group may not see are skipped, and no mask of the scores' size is built (the
    autograd path; on CPU without gradients the fused kernel, :mod:`.ls_attention_kernel`, takes
    the window and the compressed keys in one softmax per query).

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
        memory_compression: ``'input'`` (official, see above) or ``'keys'``: project the memory
            tokens, then compress each head's keys/values as the segments of ``x`` (M more
            projected tokens per call).
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, segment_size: int,
                 dp_rank: int, qkv_bias: bool = True, attn_drop: float = 0., proj_drop: float = 0.,
                 proj_bias: bool = True, rel_pos: bool = False, memory_compression: str = 'input',
                 init_cfg: dict | None = None):
        super().__init__(embed_dims, num_heads, dp_rank, qkv_bias, attn_drop, proj_drop,
                         proj_bias, init_cfg)
        if window_size < 1 or segment_size < 1:
            raise ValueError(f'window_size={window_size} and segment_size={segment_size} '
                             'must be >= 1')
        if memory_compression not in ('input', 'keys'):
            raise ValueError(f"memory_compression must be 'input' or 'keys', got "
                             f'{memory_compression!r}')
        if rel_pos and embed_dims % 2:
            raise ValueError(f'rel_pos needs an even embed_dims, got {embed_dims}')
        self.window_size, self.segment_size = window_size, segment_size
        self.rel_pos, self.memory_compression = rel_pos, memory_compression
        self.query_group = 1024  # queries per step: bounds the scores' memory
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
        if n_pad > n:
            x = F.pad(x, (0, 0, 0, n_pad - n))

        q, kv = self.qkv(x).split([c, 2 * c], dim=-1)
        lead = min(mem_len, w)  # memory tokens in front of the window keys
        # LN_S(K), LN_S(V) of the window keys [B, w + N, 2, C]: position t at row t + w
        kv_s = kv.new_empty(b, w + n_pad, 2, c)
        kv_s[:, :w - lead] = 0  # no keys before the memory (masked)
        kv_s[:, w:] = self.dual_ln.short(kv.view(b, n_pad, 2, c))
        if lead:
            kv_m = F.linear(memory[:, -lead:], self.qkv.weight[c:],
                            None if self.qkv.bias is None else self.qkv.bias[c:])
            kv_s[:, w - lead:w] = self.dual_ln.short(kv_m.view(b, lead, 2, c))

        with torch.autocast(device_type=x.device.type, enabled=False):
            dtype = compute_dtype(q.dtype)
            q = split_heads(q.to(dtype), h) * self.scale
            k_s, v_s = (split_heads(t.to(dtype), h) for t in kv_s.unbind(2))
            k, v = kv.to(dtype).chunk(2, dim=-1)
            rel_win = rel_long = k_l = v_l = None
            if self.rel_pos:
                rel_win = self.rel_embedding(self.rel_pos_proj, w, q)
            if self.dynamic_proj is not None:
                k_l, v_l = self.compress_segments(x, k, v, memory)
                if self.rel_pos:
                    rel_long = self.rel_embedding(self.rel_pos_proj_long, k_l.shape[2], q)
            u = v = None
            if self.rel_pos:
                u, v = self.rel_content_bias, self.rel_pos_bias
            if kernel.usable(q, kv_s, k_l, v_l, rel_win, rel_long, u, v,
                             dropout_p=self.dropout_p):
                out = kernel.causal_attention(
                    q, k_s, v_s, None if rel_win is None else rel_win[0], u, v, k_l, v_l,
                    None if rel_long is None else rel_long[0], w - lead, seg, self.dp_rank,
                    mem_len // seg)
                return self.output(out[:, :n].flatten(2), x.dtype)
            group = max(1, round(self.query_group / unit)) * unit
            out = q.new_empty(b, n_pad, h, q.shape[-1])
            for t0 in range(0, n_pad, group):  # query groups: bounded scores, fewer masked keys
                t1 = min(t0 + group, n_pad)
                parts = [self.window_scores(q[:, :, t0:t1], k_s[:, :, t0:t1 + w],
                                            v_s[:, :, t0:t1 + w], rel_win, w - lead if t0 == 0
                                            else 0)]
                if k_l is not None:
                    seen = self.dp_rank * ((mem_len + t1) // seg)  # the group sees these
                    parts.append((self.long_scores(q[:, :, t0:t1], k_l[:, :, :seen],
                                                   None if rel_long is None
                                                   else rel_long[:, :, -seen:],
                                                   (mem_len + t0) // seg), v_l[:, :, :seen]))
                out[:, t0:t1] = self.joint_softmax(parts).transpose(1, 2)
            out = out[:, :n].flatten(2)
        return self.output(out, x.dtype)

    def rel_embedding(self, proj: nn.Linear, length: int, like: torch.Tensor) -> torch.Tensor:
        """``proj(sin(p))`` for ``p = length - 1 .. 0`` per head: ``[1, h, length, d]``."""
        rel = sinusoid(torch.arange(length - 1, -1, -1, device=like.device), self.embed_dims)
        return split_heads(proj(rel.to(like))[None], self.num_heads)

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
            p_m = self.dynamic_proj.weights(m, segment=seg)  # [B, h, Gm, r, l]
            weight = self.qkv.weight[c:].to(m.dtype)
            bias = None if self.qkv.bias is None else self.qkv.bias[c:].to(m.dtype)
            if self.memory_compression == 'input':  # official: compress, then project
                m = merge_heads((p_m @ per_segment(m)).flatten(2, 3))  # head i: input slice i
                k_m, v_m = (split_heads(t, h) for t in F.linear(m, weight, bias).chunk(2, -1))
            else:  # project, then compress per head, as the segments of x
                k_m, v_m = ((p_m @ per_segment(t)).flatten(2, 3)
                            for t in F.linear(m, weight, bias).chunk(2, -1))
            k_l = torch.cat([k_m, k_l], 2)
            v_l = torch.cat([v_m, v_l], 2)
        return self.dual_ln.long_heads(k_l), self.dual_ln.long_heads(v_l)

    def window_scores(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                      rel: torch.Tensor | None, hidden: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores ``[B, h, T, w, 2w]`` of ``T`` query blocks of ``w`` against their keys
        ``[(j - 1) w, (j + 1) w)`` (``k, v [B, h, (T + 1) w, d]``), masked to the causal window;
        the first ``hidden`` keys (before the memory) are masked too. Also the value windows."""
        b, h, n, d = q.shape
        w = self.window_size
        blocks = n // w
        q_content = q if rel is None else q + self.rel_content_bias[:, None]
        scores = q_content.view(b, h, blocks, w, d) @ k.unfold(2, 2 * w, w)
        if rel is not None:  # (q + u) k^T above, (q + v) R_{t - j}^T here
            # [B, h, T w, w], column c at distance w - 1 - c; key column m of query i in a
            # window is at distance i + w - m: a skewed view (the first column is never in it)
            pos = (q + self.rel_pos_bias[:, None]) @ rel.transpose(-1, -2)
            scores[..., 1:] += pos.as_strided((b, h, blocks, w, 2 * w - 1),
                                              (pos.stride(0), pos.stride(1), w * w, w - 1, 1),
                                              pos.storage_offset())
        i, m = torch.arange(w, device=q.device)[:, None], torch.arange(2 * w, device=q.device)
        outside = (m <= i) | (m > i + w)  # outside (t - w, t]; an additive mask is the cheaper
        scores.add_(torch.zeros(outside.shape, dtype=scores.dtype,
                                device=q.device).masked_fill_(outside, -math.inf))
        if hidden:
            scores[:, :, 0, :, :hidden] = -math.inf
        return scores, v.unfold(2, 2 * w, w).transpose(-1, -2)

    def long_scores(self, q: torch.Tensor, k: torch.Tensor, rel: torch.Tensor | None,
                    first_seg: int) -> torch.Tensor:
        """Scores ``[B, h, n, cols]`` of queries in the segments ``first_seg ..`` (counted from
        the start of the memory) against the first ``cols`` compressed keys, masked to the
        segments before the query's own. ``rel``: ``S_p`` for ``p = cols - 1 .. 0``."""
        b, h, n, d = q.shape
        seg, r = self.segment_size, self.dp_rank
        segs, cols = n // seg, k.shape[2]
        scores = q @ k.transpose(-1, -2)
        if rel is not None:  # q S_p^T with p = r (c_q - c_k) - 1 - i, by a skewed view
            pos = F.pad(q, (0, 0, 0, 1)) @ rel.transpose(-1, -2)  # one more row: in bounds
            scores.view(b, h, segs, seg, cols).add_(pos.as_strided(
                (b, h, segs, seg, cols), (pos.stride(0), pos.stride(1), seg * cols - r, cols, 1),
                pos.storage_offset() + r * segs))
        seen = torch.arange(cols, device=q.device) < r * (
            first_seg + torch.arange(segs, device=q.device))[:, None]
        # finite: a query may see none of these keys (its part then gets weight 0)
        scores.view(b, h, segs, seg, cols).add_(torch.zeros(
            seen.shape, dtype=scores.dtype, device=q.device).masked_fill_(~seen, NEG)[:, None])
        return scores

    def joint_softmax(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """ONE softmax over all parts' scores, times their values: ``[B, h, N, d]``. ``parts``:
        ``(scores, values)`` whose scores' rows flatten to the ``N`` queries; each part's softmax
        runs on its own and the parts are merged by their log-sum-exps (exact)."""
        b, h, n = parts[0][0].shape[0], parts[0][0].shape[1], parts[0][0].shape[2:-1].numel()
        outs, lses = [], []
        for scores, values in parts:
            probs, lse = softmax_lse(scores)
            probs = F.dropout(probs, self.dropout_p, self.training)
            outs.append((probs @ values).view(b, h, n, -1))
            lses.append(lse.view(b, h, n, 1))
        return merge_softmax_parts(outs, lses)

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, window_size={self.window_size}, '
                f'segment_size={self.segment_size}, rel_pos={self.rel_pos}')
