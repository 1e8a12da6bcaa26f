"""Full multi-head self-attention over all tokens."""
import torch.nn.functional as F
from torch import nn


class MultiheadSelfAttention(nn.Module):
    """Full softmax attention over all tokens (fused q/k/v projection, SDPA).

    ``attn_bias(hw_shape)`` (None here) gives an additive ``[heads, N, N]`` score bias;
    subclasses use it for relative position biases.
    """

    def __init__(self, embed_dims, num_heads, qkv_bias=True, attn_drop=0., proj_drop=0.):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} must be divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def attn_bias(self, hw_shape):
        return None

    def forward(self, x, hw_shape):
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(
            2, 0, 3, 1, 4)
        bias = self.attn_bias(hw_shape)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
            dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))
