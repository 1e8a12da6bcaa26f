"""Pieces shared by the Long-Short Transformer attention modules (Zhu et al., NeurIPS 2021).

* :class:`DynamicProjection` -- the long-range branch, Sec. 3.1:
  ``P_i = softmax_n(X W_i^P)`` (n x r), ``K_bar_i = P_i^T K_i``, ``V_bar_i = P_i^T V_i``.
* :class:`DualLayerNorm` -- Sec. 3.2: ``LN_S`` on the short-range and ``LN_L`` on the long-range
  keys/values. As in the official code both are ``LayerNorm(C)`` over all channels, applied
  before the split into heads (C affine parameters per branch).
* :func:`shared_key_attention` and :func:`windowed_attention` -- Eq. (4), ONE softmax over
  ``[Q K_short^T ; Q K_bar^T] / sqrt(d)``, computed without copying the long-range keys into
  every window: the long-range (and global) keys enter each window as ONE summary key whose score
  is their log-sum-exp and whose value is their softmax average. This is exact::

      sum_j e^{s_j} v_j over the long keys  ==  e^{lse} * out_long

  so softmax over ``[window scores ; lse]`` with values ``[V_window ; out_long]`` is the joint
  softmax. Padding validity and the summary score ride in two extra channels of q/k/v, so the
  windows go through ``F.scaled_dot_product_attention`` without a mask as large as the scores.
* :class:`LongShortAttentionBase` -- q/k/v and output projections plus the pieces above.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from . import ls_attention_kernel as kernel

#: Additive score of a masked key: finite (so ``0 * NEG`` stays 0 inside dot products) and far
#: below any real score, so ``exp`` underflows to exactly 0.
NEG = -1e30
#: Channels appended to q/k/v by :func:`augment_kv` / :func:`augment_queries`.
EXTRA_CHANNELS = 2


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Attention runs in fp32 at least (fp64 stays fp64)."""
    return torch.promote_types(dtype, torch.float32)


def split_heads(t: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, h, N, C / h]`` (a view)."""
    b, n, c = t.shape
    return t.view(b, n, num_heads, c // num_heads).transpose(1, 2)


def merge_heads(t: torch.Tensor) -> torch.Tensor:
    """``[B, h, N, d]`` -> ``[B, N, h d]``."""
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``softmax(q k^T) v`` of scaled queries ``q [..., n, d]`` over ``k, v [..., m, d]``."""
    return (q @ k.transpose(-1, -2)).softmax(-1) @ v


def shared_key_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
                         scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every query ``q [B, N, C]`` against the same few keys/values ``k, v [B, m, C]`` (the
    compressed and global ones), per head: the softmax-averaged values ``[B, h, N, d]`` and the
    log-sum-exp of the scores ``[B, h, N, 1]``.

    The scores are laid out ``[B, h, m, N]``, so that the softmax's reductions over the few
    ``m`` keys run along the long, contiguous ``N`` axis."""
    scores = split_heads(k * scale, heads) @ split_heads(q, heads).transpose(-1, -2)
    probs, lse = softmax_lse(scores, -2)
    return probs.transpose(-1, -2) @ split_heads(v, heads), lse.transpose(-1, -2)


def softmax_lse(scores: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(scores)`` along ``dim`` and the log-sum-exp of the scores (keepdim): the maximum
    score minus the log of the maximum probability (which is >= 1 / n), so no second exp pass."""
    probs = scores.softmax(dim)
    return probs, scores.amax(dim, keepdim=True) - probs.amax(dim, keepdim=True).log()


def merge_softmax_parts(outs: list[torch.Tensor], lses: list[torch.Tensor]) -> torch.Tensor:
    """ONE softmax over several key sets from each set's own softmax average ``outs[i]`` and
    log-sum-exp ``lses[i]`` (broadcastable): ``sum_i exp(lse_i - lse) out_i``, ``lse`` the
    log-sum-exp over the sets. A set whose keys are all masked by the finite :data:`NEG` gets
    weight exactly 0."""
    weights = torch.stack(lses).softmax(0)
    out = outs[0] * weights[0]
    for part, weight in zip(outs[1:], weights[1:]):
        out = torch.addcmul(out, part, weight)
    return out


def augment_kv(k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor | None = None,
               pad: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """Append the validity and summary channels: ``k -> [k, 0 | NEG, 0]``, ``v -> [v, 0, 0]``.

    ``pad`` pads the dims before the channels as in ``F.pad`` (zeros), in the same copy.
    ``valid`` (bool, broadcastable to the padded ``k.shape[:-1]``) marks real keys; an invalid key
    gets the score :data:`NEG` from the query's validity channel (always 1).
    """
    k = F.pad(k, (0, EXTRA_CHANNELS) + tuple(pad))
    if valid is not None:
        k[..., -2] = torch.where(valid, 0., NEG)
    return k, F.pad(v, (0, EXTRA_CHANNELS) + tuple(pad))


def augment_queries(q: torch.Tensor, lse: torch.Tensor | None, scale: float) -> torch.Tensor:
    """``q [..., d] -> [q, 1, lse / scale]``: the validity channel and the summary score of
    :func:`shared_key_attention` (``lse [..., 1]``), in one new contiguous tensor (so a permuted
    ``q`` view comes out in the permuted layout)."""
    out = q.new_empty(*q.shape[:-1], q.shape[-1] + EXTRA_CHANNELS)
    out[..., :-EXTRA_CHANNELS] = q
    out[..., -2] = 1
    if lse is None:
        out[..., -1] = 0
    else:
        out[..., -1:] = lse / scale
    return out


def stack_windows(windows: torch.Tensor, batch_shape: tuple[int, int], summary: bool,
                  value: bool) -> torch.Tensor:
    """Copy a (strided) view of augmented windows into ``[X, Y, L (+ 1), d + 2]``.

    ``windows`` has ``X * Y`` windows of ``L`` keys, laid out so that it is a view of the first
    ``L`` slots (e.g. ``[B, h, T, L, d + 2]`` for ``batch_shape = (B h, T)``). With ``summary``
    the last slot is the summary key ``[0, 0, 1]`` (``value``: ``[0, 1, 0]``).
    """
    d = windows.shape[-1]
    slots = windows.numel() // (batch_shape[0] * batch_shape[1] * d)
    out = windows.new_empty(*batch_shape, slots + summary, d)
    out[:, :, :slots].view(windows.shape).copy_(windows)
    if summary:
        out[:, :, slots:].zero_()
        out[:, :, slots:, -2 if value else -1] = 1
    return out


def windowed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                       bias: torch.Tensor | None = None, dropout_p: float = 0.) -> torch.Tensor:
    """One softmax per window over augmented q/k/v (``[X, Y, L, d + 2]``, see :func:`augment_kv`,
    :func:`augment_queries`, :func:`stack_windows`). ``bias`` is an additive score bias
    broadcastable to ``[X, Y, Lq, Lk]``. Returns ``[X, Y, Lq, d + 2]``; combine it with the
    long-range average by :func:`combine_summary`."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p,
                                          scale=scale)


def combine_summary(out: torch.Tensor, long_out: torch.Tensor | None) -> torch.Tensor:
    """``out [..., d + 2]`` of :func:`windowed_attention` -> ``[..., d]``: the window part plus the
    summary key's weight times the long-range average ``long_out [..., d]``."""
    d = out.shape[-1] - EXTRA_CHANNELS
    if long_out is None:
        return out[..., :d]
    return torch.addcmul(out[..., :d], out[..., d:d + 1], long_out)


class DynamicProjection(nn.Module):
    """Long-range branch: ``P = softmax over positions of (X W^P)``, ``K_bar = P^T K`` (Sec. 3.1).

    ``r = dp_rank`` projected vectors per head.
    """

    def __init__(self, embed_dims: int, num_heads: int, dp_rank: int):
        super().__init__()
        self.num_heads, self.dp_rank = num_heads, dp_rank
        self.proj = nn.Linear(embed_dims, num_heads * dp_rank)

    def weights(self, x: torch.Tensor, valid: torch.Tensor | None = None,
                segment: int | None = None) -> torch.Tensor:
        """``P^T`` as ``[B, h r, N]`` (softmax over all N positions; ``valid [B, N]`` masks
        positions out), or with ``segment = l`` per segment as ``[B, h, G, r, l]`` (softmax
        inside each segment of ``l`` positions; ``N = G l``)."""
        b, n, _ = x.shape
        logits = self.proj(x)
        logits = logits.to(compute_dtype(logits.dtype))
        if segment is not None:
            return logits.view(b, n // segment, segment, self.num_heads,
                               self.dp_rank).permute(0, 3, 1, 4, 2).softmax(-1)
        if valid is not None:
            logits = logits.masked_fill(~valid[:, :, None], NEG)
        return logits.softmax(1).transpose(1, 2)


class DualLayerNorm(nn.Module):
    """``LN_S`` (short range) and ``LN_L`` (long range), each ``LayerNorm(C)`` over all channels.

    Official names: 1D (LRA) ``dual_ln_l`` / ``dual_ln_s``, 2D (ViL) ``dual_ln_full`` /
    ``dual_ln_dp``, causal ``dual_ln_win`` / ``dual_ln_dproj`` (see
    :func:`convert_official_ls_state_dict`).
    """

    def __init__(self, embed_dims: int):
        super().__init__()
        self.short = nn.LayerNorm(embed_dims)
        self.long = nn.LayerNorm(embed_dims)

    def long_heads(self, t: torch.Tensor) -> torch.Tensor:
        """``LN_L`` of per-head vectors ``[B, h, m, d]``: over the C channels of each of the ``m``
        long-range vectors, i.e. across heads."""
        b, h, m, d = t.shape
        return split_heads(self.long(merge_heads(t)), h)


class LongShortAttentionBase(BaseModule):
    """q/k/v + output projections, dynamic projection and dual LayerNorm of an LS attention layer.

    Subclasses define how the short-range windows are cut. ``dp_rank=0`` turns the long-range
    branch off (then :attr:`dynamic_proj` is None).
    """

    def __init__(self, embed_dims: int, num_heads: int, dp_rank: int, qkv_bias: bool = True,
                 attn_drop: float = 0., proj_drop: float = 0., proj_bias: bool = True,
                 init_cfg: dict | None = None):
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} not divisible by num_heads={num_heads}')
        if dp_rank < 0:
            raise ValueError(f'dp_rank must be >= 0, got {dp_rank}')
        self.embed_dims, self.num_heads, self.dp_rank = embed_dims, num_heads, dp_rank
        self.head_dims = embed_dims // num_heads
        self.scale = self.head_dims ** -0.5
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.dynamic_proj = DynamicProjection(embed_dims, num_heads, dp_rank) if dp_rank else None
        self.dual_ln = DualLayerNorm(embed_dims)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims, bias=proj_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, N, C]`` -> ``Q [B, N, C]`` and ``[LN_S(K), LN_S(V)] [B, N, 2, C]`` in the
        compute dtype (LN over all C channels, before the head split)."""
        b, n, c = x.shape
        weight, bias = self.qkv.weight, self.qkv.bias
        q = F.linear(x, weight[:c], None if bias is None else bias[:c])
        kv = F.linear(x, weight[c:], None if bias is None else bias[c:]).view(b, n, 2, c)
        dtype = compute_dtype(q.dtype)
        if kernel.usable(kv, *self.dual_ln.short.parameters()):
            return q, kernel.layer_norm_(kv, self.dual_ln.short)
        return q.to(dtype), self.dual_ln.short(kv).to(dtype)

    def compress(self, x: torch.Tensor, kv: torch.Tensor,
                 valid: torch.Tensor | None = None) -> torch.Tensor:
        """Long-range keys/values ``LN_L(P_i^T K_i)``, ``LN_L(P_i^T V_i)`` (heads side by side)
        as ``[B, r, 2, C]`` from ``kv [B, N, 2, C]`` (the 1D and 2D official modules compress
        ``LN_S(K), LN_S(V)``)."""
        b, n, _, c = kv.shape
        h = self.num_heads
        p_t = self.dynamic_proj.weights(x, valid).view(b, h, -1, n)  # [B, h, r, N]
        bar = [merge_heads(p_t @ split_heads(t, h)) for t in kv.unbind(2)]  # [B, r, C] each
        return self.dual_ln.long(torch.stack(bar, 2))

    def output(self, out: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``[B, N, C]`` attention output -> projected, in the input dtype."""
        return self.proj_drop(self.proj(out.to(dtype)))

    @property
    def dropout_p(self) -> float:
        return self.attn_drop if self.training else 0.

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, dp_rank={self.dp_rank}'
