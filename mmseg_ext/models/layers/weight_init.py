"""The ViT-family initialisation of Linear and LayerNorm modules."""
from mmengine.model.weight_init import trunc_normal_
from torch import nn


def init_linear_or_norm(m):
    """The ViT-family initialisation of one module (MiT, ViL, CvT): Linear weights truncated
    normal (std 0.02), zero biases; LayerNorm weight 1, bias 0. True if ``m`` was one of them."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
        return True
    if isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
        return True
    return False
