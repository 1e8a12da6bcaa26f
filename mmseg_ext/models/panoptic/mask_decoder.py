"""Mask decoder of Panoptic SegFormer (paper Sec. 3.4): stacked attention-to-mask blocks."""
from collections.abc import Sequence

from mmdet.registry import MODELS
from torch import Tensor, nn

from .attention_to_mask import AttentionToMask


class MaskDecoderLayer(nn.Module):
    """[self-attention -> LN] -> attention-to-mask cross-attention -> LN -> MLP -> LN.

    Post-norm block; things use no self-attention, stuff queries attend to each other first.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 3,
                 mlp_ratio: float = 4.0, self_attn: bool = False) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, batch_first=True) if self_attn else None
        self.norm_self = nn.LayerNorm(embed_dims, eps=1e-6) if self_attn else None
        self.cross_attn = AttentionToMask(embed_dims, num_heads, num_levels, with_value=True)
        self.norm_cross = nn.LayerNorm(embed_dims, eps=1e-6)
        hidden = int(embed_dims * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(embed_dims, hidden), nn.GELU(),
                                 nn.Linear(hidden, embed_dims))
        self.norm_mlp = nn.LayerNorm(embed_dims, eps=1e-6)

    def forward(self, query: Tensor, memory: Tensor,
                hw_levels: Sequence[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        if self.self_attn is not None:
            query = self.norm_self(query + self.self_attn(query, query, query,
                                                          need_weights=False)[0])
        out, mask = self.cross_attn(query, memory, hw_levels)
        query = self.norm_cross(query + out)
        query = self.norm_mlp(query + self.mlp(query))
        return query, mask


@MODELS.register_module()
class PanSegMaskDecoder(nn.Module):
    """``num_layers`` blocks plus a final mask-only attention stage.

    Every block predicts a mask from its cross-attention logits (deep supervision); the last
    stage (``mask_head``) turns the output queries into the final masks. The query positional
    embedding, if any, is added to the query stream before every block, as in the official code.

    Returns ``(masks, queries)``: ``num_layers + 1`` masks of shape ``(B, N, h0, w0)`` (the last
    is the final prediction) and the ``num_layers`` intermediate queries ``(B, N, C)``.
    """

    def __init__(self, num_layers: int = 4, embed_dims: int = 256, num_heads: int = 8,
                 num_levels: int = 3, mlp_ratio: float = 4.0, self_attn: bool = False) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            MaskDecoderLayer(embed_dims, num_heads, num_levels, mlp_ratio, self_attn)
            for _ in range(num_layers))
        self.mask_head = AttentionToMask(embed_dims, num_heads, num_levels, with_value=False)
        self.num_layers = num_layers

    def init_weights(self) -> None:
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, query: Tensor, memory: Tensor, hw_levels: Sequence[tuple[int, int]],
                query_pos: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
        masks, queries = [], []
        for layer in self.layers:
            if query_pos is not None:
                query = query + query_pos
            query, mask = layer(query, memory, hw_levels)
            masks.append(mask)
            queries.append(query)
        if query_pos is not None:
            query = query + query_pos
        masks.append(self.mask_head(query, memory, hw_levels)[1])
        return masks, queries
