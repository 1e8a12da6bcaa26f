"""The transformer MLP (ViT, Dosovitskiy et al. 2021) and CvT's QuickGELU activation."""
import torch
from torch import nn


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the activation of the official CvT code."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Mlp(nn.Sequential):
    """Linear(C, hidden) -> activation -> dropout -> Linear(hidden, C) -> dropout."""

    def __init__(self, embed_dims, hidden_dims, act=nn.GELU, drop=0.):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = act()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop2 = nn.Dropout(drop)
