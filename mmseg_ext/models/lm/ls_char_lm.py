"""Character-level Long-Short Transformer LM (Zhu et al., NeurIPS 2021, Sec. 4.1; official:
``autoregressive/model_lib/model.py`` ``TransformerLSModel``)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..layers import CausalLSAttention1d
from ..layers.mlp import Mlp

#: (depth, embed_dims, num_heads, ffn_dims) of the paper's models (official launch scripts).
ARCH_SETTINGS = {'12l': (12, 512, 8, 2048), '30l': (30, 512, 8, 2048)}


class CausalLSLayer(nn.Module):
    """The official ``--pre-ln`` layer: ``h = LN1(x)``, ``h = h + Attn(h, LN1(memory))``,
    ``h = LN2(h)``, ``out = h + FFN(h)`` (the residual stream itself is normalised)."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dims: int, window_size: int,
                 segment_size: int, dp_rank: int, rel_pos: bool, drop: float,
                 memory_compression: str = 'input'):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = CausalLSAttention1d(embed_dims, num_heads, window_size, segment_size,
                                        dp_rank, qkv_bias=False, proj_drop=drop, proj_bias=False,
                                        rel_pos=rel_pos, memory_compression=memory_compression)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ff = Mlp(embed_dims, ffn_dims, drop=drop)  # official ``FeedForwardLayer``

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        h = self.norm2(h + self.attn(h, None if memory is None else self.norm1(memory)))
        return h + self.ff(h)


@MODELS.register_module()
class LSCharLM(BaseModel):
    """Byte-level LM: embedding ``* sqrt(C)``, ``depth`` :class:`CausalLSLayer`, output layer tied
    to the embedding (official ``TransformerLSModel`` with ``--pre-ln --use-gelu``; parameter
    names as official, so :func:`convert_official_ls_state_dict` maps an official state dict
    without its ``decoder.model.`` prefix, up to the vocabulary: fairseq indexes its own
    dictionary of the bytes, not raw bytes).

    With ``mem_len > 0`` every layer keeps a Transformer-XL memory: its inputs at the ``mem_len``
    preceding positions, detached, carried from one call to the next and per stream (see
    :class:`CharLMDataset`); it starts as zeros, as the official model's. ``eval_mem_len`` is the
    memory used in eval mode (the paper evaluates with 32768). With ``rel_pos=False`` the
    attention has no relative-position terms and learned absolute embeddings of ``max_len``
    positions are added instead. ``memory_compression`` see :class:`CausalLSAttention1d`.

    ``inputs [B, L + 1]`` bytes: predicts ``inputs[:, 1:]`` from ``inputs[:, :-1]``; the dataset's
    ``num_targets [B]`` masks the padded tail of a last block. Modes: ``'loss'`` ->
    ``dict(loss=mean cross-entropy)``; ``'predict'`` -> per sample ``dict(nll_sum, num_chars)``
    for :class:`BitsPerChar`; ``'tensor'`` -> log-probabilities ``[B, L, vocab]``.
    """

    def __init__(self, embed_dims: int = 512, depth: int = 12, num_heads: int = 8,
                 ffn_dims: int = 2048, window_size: int = 512, segment_size: int = 16,
                 dp_rank: int = 1, mem_len: int = 0, eval_mem_len: int | None = None,
                 rel_pos: bool = True, max_len: int | None = None, drop: float = 0.,
                 emb_drop: float = 0., memory_compression: str = 'input', vocab_size: int = 256,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        eval_mem_len = mem_len if eval_mem_len is None else eval_mem_len
        for name, value in (('mem_len', mem_len), ('eval_mem_len', eval_mem_len)):
            if value < 0 or value % segment_size:
                raise ValueError(f'{name}={value} must be a multiple of segment_size='
                                 f'{segment_size}')
        if not rel_pos and not max_len:
            raise ValueError('rel_pos=False needs max_len (learned absolute positions)')
        self.embed_dims, self.mem_len, self.eval_mem_len = embed_dims, mem_len, eval_mem_len
        self.in_emb = nn.Embedding(vocab_size, embed_dims)
        self.pos_emb = None if rel_pos else nn.Parameter(torch.zeros(1, max_len, embed_dims))
        self.emb_drop = nn.Dropout(emb_drop)
        self.layers = nn.ModuleList(
            CausalLSLayer(embed_dims, num_heads, ffn_dims, window_size, segment_size, dp_rank,
                          rel_pos, drop, memory_compression) for _ in range(depth))
        self.out_emb = nn.Linear(embed_dims, vocab_size)
        self.out_emb.weight = self.in_emb.weight
        self._memory = {}  # training flag -> (stream ids, per-layer memories)
        self.official_init()

    def init_weights(self):
        self.official_init()
        super().init_weights()

    def official_init(self):
        """The official initialisation: N(0, 0.02) weights, zero biases, LayerNorm weights
        N(1, 0.02), relative-position biases N(0, 0.02)."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0., 0.02)
            if isinstance(m, nn.LayerNorm):
                nn.init.normal_(m.weight, 1., 0.02)
            if isinstance(m, (nn.Linear, nn.LayerNorm)) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, CausalLSAttention1d) and m.rel_pos:
                nn.init.normal_(m.rel_content_bias, 0., 0.02)
                nn.init.normal_(m.rel_pos_bias, 0., 0.02)
        if self.pos_emb is not None:
            nn.init.normal_(self.pos_emb, 0., 0.02)

    @property
    def memory_length(self) -> int:
        return self.mem_len if self.training else self.eval_mem_len

    def log_probs(self, tokens: torch.Tensor, memory: list[torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """``tokens [B, L]`` and per-layer memories ``[B, M, C]`` -> next-byte log-probabilities
        ``[B, L, vocab]`` and the memories for the following block (the last ``M`` inputs of
        every layer, detached)."""
        h = self.in_emb(tokens) * self.embed_dims ** 0.5
        if self.pos_emb is not None:
            if tokens.shape[1] > self.pos_emb.shape[1]:
                raise ValueError(f'sequence length {tokens.shape[1]} > max_len '
                                 f'{self.pos_emb.shape[1]}')
            h = h + self.pos_emb[:, :tokens.shape[1]]
        h = self.emb_drop(h)
        new_memory = None if memory is None else []
        for i, layer in enumerate(self.layers):
            if memory is not None:
                new_memory.append(torch.cat([memory[i], h], 1)[:, -memory[i].shape[1]:].detach())
            h = layer(h, None if memory is None else memory[i])
        return F.log_softmax(self.out_emb(self.emb_drop(h)).float(), -1), new_memory

    def stream_memory(self, batch: int, first: torch.Tensor | None,
                      stream: torch.Tensor | None, like: torch.Tensor) -> list[torch.Tensor] | None:
        """This mode's memories for the batch's streams: the stored ones where the streams
        continue, zeros where a stream starts (``first``) or the streams changed."""
        length = self.memory_length
        if not length:
            return None
        zeros = like.new_zeros(len(self.layers), batch, length, self.embed_dims)
        ids, memory = self._memory.get(self.training, (None, None))
        if stream is None or ids is None or not torch.equal(ids, stream) or \
                memory.shape != zeros.shape:
            return list(zeros)
        if first is not None:
            memory = memory.masked_fill(first.bool().view(1, -1, 1, 1), 0.)
        return list(memory)

    def forward(self, inputs: torch.Tensor, num_targets: torch.Tensor | None = None,
                first: torch.Tensor | None = None, stream: torch.Tensor | None = None,
                data_samples=None, mode: str = 'tensor'):
        tokens, targets = inputs[:, :-1], inputs[:, 1:]
        if stream is not None and stream.unique().numel() != stream.numel():
            raise ValueError(f'a batch holds blocks of streams {stream.tolist()}: the dataset\'s '
                             'batch_size (CharLMDataset streams per GPU) must equal the '
                             'dataloader\'s batch_size')
        memory = self.stream_memory(tokens.shape[0], first, stream, self.in_emb.weight)
        log_probs, memory = self.log_probs(tokens, memory)
        if memory is not None and stream is not None:
            self._memory[self.training] = (stream.clone(), torch.stack(memory))
        if mode == 'tensor':
            return log_probs
        nll = F.nll_loss(log_probs.flatten(0, 1), targets.flatten(), reduction='none')
        nll = nll.view_as(targets)
        if num_targets is not None:
            nll = nll * (torch.arange(targets.shape[1], device=nll.device) < num_targets[:, None])
        count = targets.new_full((targets.shape[0], ), targets.shape[1]) if num_targets is None \
            else num_targets
        if mode == 'loss':
            return dict(loss=nll.sum() / count.sum())
        if mode == 'predict':
            nll = nll.detach()
            return [dict(nll_sum=row.sum(), num_chars=int(c)) for row, c in zip(nll, count)]
        raise ValueError(f'unknown mode {mode!r}')

