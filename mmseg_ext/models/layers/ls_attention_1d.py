"""Bidirectional Long-Short attention over a 1D sequence (Zhu et al., NeurIPS 2021, Sec. 3)."""
import math

import torch
import torch.nn.functional as F
from mmengine.registry import MODELS

from . import ls_attention_kernel as kernel
from .ls_attention_base import (
    NEG,
    LongShortAttentionBase,
    augment_queries,
    combine_summary,
    merge_heads,
    shared_key_attention,
    split_heads,
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
    long-range branch. ``forward(x, extra=e)`` adds ``LN_L(e W^K)``, ``LN_L(e W^V)`` of extra
    tokens ``e`` (not ``LN_S``-normalised, not compressed) to the long-range keys/values of every
    query: the official LRA ``cls_embed`` of the last block. Cost O(N (w + r)) time and memory.
    On CPU in fp32 the fused kernel (:mod:`.ls_attention_kernel`) computes it, forward and backward.

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

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """``x [B, N, C]``, ``key_padding_mask [B, N]`` (True = pad) -> ``[B, N, C]``.

        ``extra [B, E, C]``: tokens (e.g. the LRA CLS vector) whose keys/values
        ``LN_L(extra W^K)``, ``LN_L(extra W^V)`` join the long-range keys of every query, as the
        official ``cls_embed``; their own outputs are not computed.
        """
        return self.output(self.attend(x, key_padding_mask, extra), x.dtype)

    def attend(self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None,
               extra: torch.Tensor | None = None) -> torch.Tensor:
        """The heads' outputs side by side ``[B, N, C]`` before the output projection, in the
        compute dtype (arguments as :meth:`forward`)."""
        b, n, c = x.shape
        w, halo, h = self.window_size, self.halo, self.num_heads
        segs = math.ceil(n / w)
        pad = segs * w - n
        if key_padding_mask is not None and key_padding_mask.shape != (b, n):
            raise ValueError(f'key_padding_mask of shape {tuple(key_padding_mask.shape)} does not '
                             f'match x [B, N] = {(b, n)}')
        valid = None if key_padding_mask is None else ~key_padding_mask.bool()

        q, kv = self.project(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            shared = []  # keys/values every query sees: extra tokens, compressed
            if extra is not None:
                if extra.dim() != 3 or extra.shape[::2] != (b, c):
                    raise ValueError(f'extra of shape {tuple(extra.shape)} does not match x '
                                     f'{(b, n, c)}: expected [B, E, C]')
                kv_e = F.linear(extra, self.qkv.weight[c:],
                                None if self.qkv.bias is None else self.qkv.bias[c:])
                shared.append(self.dual_ln.long(kv_e.unflatten(-1, (2, c))).to(kv.dtype))
            if self.dynamic_proj is not None:
                shared.append(self.compress(x, kv, valid))
            long_kv = (torch.cat(shared, 1) if len(shared) > 1 else shared[0]) if shared else None
            if kernel.usable(q, kv, long_kv, dropout_p=self.dropout_p, differentiable=True):
                return kernel.window_attention_1d(q, kv, long_kv, valid, h, w, halo, self.scale)
            long_out = lse = None
            if long_kv is not None:
                long_out, lse = shared_key_attention(q, long_kv[:, :, 0], long_kv[:, :, 1], h,
                                                     self.scale)
                lse = lse - math.log(2)  # two summary slots per window: half the weight each
            k_lay, v_lay = self.block_layout(split_heads(kv[:, :, 0], h),
                                             split_heads(kv[:, :, 1], h), valid, lse is not None)
            size = w + 2 * halo + 2  # segment, halo each side, two summary slots
            k_win, v_win = (t.flatten(2, 3)[:, :, w - halo:].unfold(2, size, w + 1).transpose(
                -1, -2).flatten(0, 1) for t in (k_lay, v_lay))  # [B h, T, size, d + 2] views
            q_aug = augment_queries(split_heads(q, h), lse, self.scale)
            if pad:
                q_aug = F.pad(q_aug, (0, 0, 0, pad))
            q_aug = q_aug.view(b * h, segs, w, -1)
            out = windowed_attention(q_aug, k_win, v_win, self.scale, dropout_p=self.dropout_p)
            out = combine_summary(out.view(b, h, segs * w, -1)[:, :, :n], long_out)
            out = merge_heads(out)
            if valid is not None:
                out = out.masked_fill_(~valid[..., None], 0)
        return out

    def block_layout(self, k: torch.Tensor, v: torch.Tensor, valid: torch.Tensor | None,
                     summary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented keys/values ``[B, h, T + 2, w + 1, d + 2]``: the ``T`` segments of ``w``
        tokens between two empty ones, each followed by a summary slot (see
        :func:`~.ls_attention_base.augment_kv`). The window of segment ``s`` -- its tokens,
        ``e`` tokens each side and the two summary slots between them -- is then a strided view
        (no copy per window)."""
        b, h, n, d = k.shape
        w = self.window_size
        segs = math.ceil(n / w)
        pad = segs * w - n
        real = torch.arange(segs * w, device=k.device) < n
        real = real[None] if valid is None else real & F.pad(valid, (0, pad))
        token_ok = torch.zeros(real.shape[0], segs + 2, w + 1, dtype=torch.bool, device=k.device)
        token_ok[:, 1:-1, :w] = real.view(-1, segs, w)
        slot = torch.zeros(segs + 2, w + 1, dtype=k.dtype, device=k.device)
        slot[:, w] = 1
        out = []
        for t, is_value in ((k, False), (v, True)):
            buf = t.new_empty(b, h, segs + 2, w + 1, d + 2)
            for empty in (buf[:, :, 0], buf[:, :, -1], buf[:, :, 1:-1, w, :d]):
                empty.zero_()
            body = buf[:, :, 1:-1, :w, :d]
            body[:, :, :-1] = t[:, :, :(segs - 1) * w].unflatten(2, (segs - 1, w))
            body[:, :, -1, :w - pad] = t[:, :, (segs - 1) * w:]
            body[:, :, -1, w - pad:] = 0
            if is_value:
                buf[..., d] = slot
                buf[..., d + 1] = 0
            else:
                buf[..., d] = torch.where(token_ok | (slot.bool() & summary), 0., NEG)[:, None]
                buf[..., d + 1] = slot
            out.append(buf)
        return out[0], out[1]

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, window_size={self.window_size}'
