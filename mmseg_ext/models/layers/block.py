"""The pre-norm transformer block of the ViL-LS and CvT*-LS backbones.

``x = x + DropPath(attn(LN(x), hw_shape)); x = x + DropPath(MLP(LN(x)))`` (ViT, Dosovitskiy et
al. 2021), with the token map's ``hw_shape`` passed to the attention so that 2D attentions (LS,
relative position bias) can use it. Global tokens (ViL) / the class token (CvT) come first in
``x``.
"""
from torch import nn

from .drop_path import drop_path
from .mlp import Mlp


class PreNormBlock(nn.Module):
    """``x + attn(LN(x))`` then ``x + MLP(LN(x))``, each branch with stochastic depth."""

    def __init__(self, attn, embed_dims, mlp_ratio=4, act=nn.GELU, drop=0., drop_path_rate=0.,
                 eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=eps)
        self.attn = attn
        self.norm2 = nn.LayerNorm(embed_dims, eps=eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), act, drop)
        self.drop_path_rate = drop_path_rate

    def forward(self, x, hw_shape):
        x = x + drop_path(self.attn(self.norm1(x), hw_shape), self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
