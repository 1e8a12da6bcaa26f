"""Stochastic depth (Huang et al., 2016)."""


def drop_path(x, p, training):
    """Stochastic depth per sample (Huang et al., 2016)."""
    if p == 0. or not training:
        return x
    keep = x.new_empty((x.shape[0], ) + (1, ) * (x.ndim - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)
