"""Sequence classifier on :class:`LSAttention1d` for Long Range Arena, as the official
Transformer-LS LRA model (NVIDIA/transformer-ls ``lra/model.py``, ``model_wrapper.py``).

Token + learned position embeddings, ``depth`` pre-norm blocks, a final LayerNorm, then an MLP head
(``Linear, ReLU, Linear``). The official runs pass ``--cls_last_layer`` for every task: a learned
CLS vector (zeros at start) joins only in the LAST block: there every token also attends to the
CLS key/value (``LN_L`` of its projections, with the long-range keys: ``LSAttention1d(...,
extra=cls)``), the CLS attends to itself and to the tokens' per-head attention outputs, and the
final LayerNorm of its output is the sequence embedding (:meth:`LSEncoderBlock.forward_cls`).
``pool='mean'`` averages the final tokens
over the non-padded positions instead. Retrieval encodes both documents with the same
encoder and classifies ``[x1, x2, x1 * x2, x1 - x2]``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..layers import LSAttention1d


def attention_per_head(attn: LSAttention1d, x: torch.Tensor, key_padding_mask: torch.Tensor,
                       extra: torch.Tensor | None = None) -> torch.Tensor:
    """``attn``'s output before its output projection, in ``x``'s dtype: the heads' outputs side
    by side [B, N, C] (``extra``: see :meth:`LSAttention1d.forward`)."""
    return attn.attend(x, key_padding_mask, extra).to(x.dtype)


class LSEncoderBlock(nn.Module):
    """``x + Drop(LSAttn(LN(x)))``, then ``x + MLP(LN(x))`` with ``MLP = Linear, GELU, Drop,
    Linear, Drop`` (the official LRA block)."""

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, dp_rank: int,
                 mlp_dims: int, drop: float = 0., attn_drop: float = 0.):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = LSAttention1d(embed_dims, num_heads, window_size, dp_rank,
                                  attn_drop=attn_drop)
        self.drop = nn.Dropout(drop)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, mlp_dims), nn.GELU(), nn.Dropout(drop),
            nn.Linear(mlp_dims, embed_dims), nn.Dropout(drop))

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), key_padding_mask))
        return x + self.mlp(self.norm2(x))

    def forward_cls(self, x: torch.Tensor, key_padding_mask: torch.Tensor,
                    cls: torch.Tensor) -> torch.Tensor:
        """The block's output at a CLS vector ``cls [B, 1, C]`` (the official cls_last_layer).

        Per head, with ``q, k, v`` the projections of ``cls`` (not normalised) and ``O_n`` the
        head's attention output at token ``n`` (before the output projection ``W_o``; the tokens
        also attend to the CLS, ``LSAttention1d(..., extra=cls)``):
        ``a = softmax([q k ; q O_n (n not padded)] / sqrt(d)) . [v ; O_n]``, then
        ``c = cls + Drop(W_o a)`` and ``c + MLP(LN(c))``.
        """
        b, n, c = x.shape
        h = self.attn.num_heads
        tokens = attention_per_head(self.attn, self.norm1(x), key_padding_mask, cls)
        tokens = tokens.view(b, n, h, c // h).transpose(1, 2)
        q, k, v = (t.view(b, 1, h, c // h).transpose(1, 2)
                   for t in self.attn.qkv(cls).chunk(3, dim=-1))
        valid = F.pad(~key_padding_mask, (1, 0), value=True)[:, None, None]
        out = F.scaled_dot_product_attention(
            q, torch.cat([k, tokens], 2), torch.cat([v, tokens], 2), attn_mask=valid)
        cls = cls + self.drop(self.attn.proj(out.transpose(1, 2).reshape(b, 1, c)))
        return cls + self.mlp(self.norm2(cls))


@MODELS.register_module()
class LRAClassifier(BaseModel):
    """Classifier of token sequences (id 0 = padding) for LRA.

    Args:
        num_classes: output classes.
        vocab_size: rows of the token embedding (official: 512 for every task).
        max_len: rows of the position embedding: the longest input (official: 2048 / 4096).
        embed_dims, depth, num_heads, mlp_dims: width, blocks, heads, MLP hidden width.
        window_size, dp_rank: ``w`` and ``r`` of :class:`LSAttention1d`.
        drop, attn_drop: dropout after embeddings / attention / MLP, and on attention weights.
        pool: ``'cls'`` (official cls_last_layer) or ``'mean'`` (over non-padded tokens).
        dual: inputs are pairs ``[B, 2, L]`` classified from ``[x1, x2, x1 * x2, x1 - x2]``.
        head_dims: hidden width of the classification MLP.

    Modes: ``'loss'`` -> ``dict(loss)``; ``'predict'`` -> per sample ``dict(pred, label)``;
    ``'tensor'`` -> logits ``[B, num_classes]``.
    """

    def __init__(self, num_classes: int, vocab_size: int = 512, max_len: int = 4096,
                 embed_dims: int = 64, depth: int = 2, num_heads: int = 2, mlp_dims: int = 128,
                 window_size: int = 8, dp_rank: int = 32, drop: float = 0.,
                 attn_drop: float = 0., pool: str = 'cls', dual: bool = False,
                 head_dims: int = 128, data_preprocessor: dict | None = None,
                 init_cfg: dict | None = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if pool not in ('cls', 'mean'):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        self.pool, self.dual = pool, dual
        self.embed = nn.Embedding(vocab_size, embed_dims)
        self.pos_embed = nn.Embedding(max_len, embed_dims)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos_embed.weight, std=0.02)
        self.drop = nn.Dropout(drop)
        self.blocks = nn.ModuleList(
            LSEncoderBlock(embed_dims, num_heads, window_size, dp_rank, mlp_dims, drop,
                           attn_drop) for _ in range(depth))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims)) if pool == 'cls' else None
        self.norm = nn.LayerNorm(embed_dims)
        self.head = nn.Sequential(
            nn.Linear(embed_dims * (4 if dual else 1), head_dims), nn.ReLU(),
            nn.Linear(head_dims, num_classes))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [B, L]`` -> sequence embeddings ``[B, C]``."""
        b, n = tokens.shape
        if n > self.pos_embed.num_embeddings:
            raise ValueError(f'sequence length {n} > max_len {self.pos_embed.num_embeddings}')
        pad = tokens == 0
        x = self.drop(self.embed(tokens) + self.pos_embed.weight[:n])
        for block in self.blocks[:-1]:
            x = block(x, pad)
        if self.pool == 'cls':
            cls = self.cls_token.expand(b, -1, -1)
            return self.norm(self.blocks[-1].forward_cls(x, pad, cls))[:, 0]
        x = self.norm(self.blocks[-1](x, pad))
        valid = (~pad).unsqueeze(-1).to(x.dtype)
        return (x * valid).sum(1) / valid.sum(1).clamp(min=1)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor | None = None,
                mode: str = 'tensor'):
        if self.dual:
            x1, x2 = self.encode(inputs.flatten(0, 1)).unflatten(0, (-1, 2)).unbind(1)
            logits = self.head(torch.cat([x1, x2, x1 * x2, x1 - x2], dim=-1))
        else:
            logits = self.head(self.encode(inputs))
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            return [dict(pred=p, label=t) for p, t in zip(logits.argmax(-1), labels)]
        raise ValueError(f'unknown mode {mode!r}')

