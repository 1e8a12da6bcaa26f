"""Token sequences and channels-last maps as views of each other (no copies).

A ``[B, H*W, C]`` token sequence, contiguous, is bit for bit a ``[B, C, H, W]`` map in
channels-last memory layout. oneDNN's convolutions and PyTorch's bilinear upsampling read and
write that layout natively, so the two views let transformer blocks (which want tokens) and
convolutions / upsampling (which want maps) share one buffer.
"""


def to_map(tokens, hw_shape):
    """``[B, H*W, C]`` -> ``[B, C, H, W]``, channels-last; a view.

    (``tokens.transpose(1, 2).view(B, C, H, W)`` looks the same, but with batch 1 its batch
    stride makes PyTorch treat it as NCHW: a copy plus two oneDNN reorders around each conv.)
    """
    return tokens.unflatten(1, tuple(hw_shape)).permute(0, 3, 1, 2)


def to_seq(x):
    """``[B, C, H, W]`` -> ``[B, H*W, C]``; a view, contiguous when ``x`` is channels-last."""
    return x.flatten(2).transpose(1, 2)
