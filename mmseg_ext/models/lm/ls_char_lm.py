"""Decoder-only byte LM with Long-Short causal attention (Zhu et al., NeurIPS 2021, Sec. 3.3)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.model.weight_init import trunc_normal_
from mmengine.registry import MODELS

from ..layers import CausalLSAttention1d


class CausalLSBlock(nn.Module):
    """Pre-norm transformer block: ``x + LSAttn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, segment_size: int,
                 dp_rank: int, mlp_ratio: int = 4, drop: float = 0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = CausalLSAttention1d(embed_dims, num_heads, window_size, segment_size, dp_rank,
                                        attn_drop=drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, mlp_ratio * embed_dims), nn.GELU(),
            nn.Linear(mlp_ratio * embed_dims, embed_dims), nn.Dropout(drop))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@MODELS.register_module()
class LSCharLM(BaseModel):
    """Byte-level language model: embeddings + learned positions, ``depth`` causal LS blocks, a
    linear head over 256 bytes. ``inputs [B, L + 1]`` bytes: predicts ``inputs[:, 1:]`` from
    ``inputs[:, :-1]``.

    Modes: ``'loss'`` -> ``dict(loss=mean cross-entropy)``; ``'predict'`` -> per sample
    ``dict(nll_sum, num_chars)`` for :class:`BitsPerChar`; ``'tensor'`` -> logits ``[B, L, 256]``.
    """

    def __init__(self, embed_dims: int = 128, depth: int = 2, num_heads: int = 4,
                 window_size: int = 64, segment_size: int = 16, dp_rank: int = 1,
                 mlp_ratio: int = 4, max_len: int = 512, drop: float = 0., vocab_size: int = 256,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.embed = nn.Embedding(vocab_size, embed_dims)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_len, embed_dims))
        trunc_normal_(self.pos_embed, std=.02)
        self.blocks = nn.ModuleList(
            CausalLSBlock(embed_dims, num_heads, window_size, segment_size, dp_rank, mlp_ratio,
                          drop) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dims)
        self.head = nn.Linear(embed_dims, vocab_size)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [B, L]`` -> next-byte logits ``[B, L, vocab]``."""
        if tokens.shape[1] > self.pos_embed.shape[1]:
            raise ValueError(f'sequence length {tokens.shape[1]} > max_len '
                             f'{self.pos_embed.shape[1]}')
        x = self.embed(tokens) + self.pos_embed[:, :tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        logits = self.logits(inputs[:, :-1])
        if mode == 'tensor':
            return logits
        targets = inputs[:, 1:]
        nll = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction='none')
        if mode == 'loss':
            return dict(loss=nll.mean())
        if mode == 'predict':
            nll = nll.view_as(targets).detach()
            return [dict(nll_sum=row.sum(), num_chars=row.numel()) for row in nll]
        raise ValueError(f'unknown mode {mode!r}')
