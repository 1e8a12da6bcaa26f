"""Eager PyTorch, ``torch.compile`` and ONNX Runtime timed side by side on one input."""
import os.path as osp
from functools import partial

import torch

from ..utils.timing import round_robin
from .graph import SegmentorGraph
from .onnx import OnnxSegmentor


def time_backends(segmentor, shape, onnx_paths=(), compile=False, repeat=20, warmup=3,
                  threads=None, stat='median'):
    """Median (``stat='min'``: fastest) ms per forward of :class:`SegmentorGraph` on one random
    ``[1, 3, H, W]`` image: eager, and optionally compiled and each ONNX file under ONNX Runtime
    (same thread count), interleaved."""
    if threads:
        torch.set_num_threads(threads)
    graph = SegmentorGraph(segmentor).eval()
    image = torch.rand(1, 3, *shape) * 255
    fns = {'pytorch eager': lambda: graph(image)}
    if compile:
        compiled = torch.compile(graph)
        fns['torch.compile'] = lambda: compiled(image)
    array = image.numpy()
    for path in onnx_paths:
        session = OnnxSegmentor(path, threads or torch.get_num_threads())
        if session.static_shape not in (None, tuple(shape)):
            raise ValueError(f'{path} was exported for inputs {session.static_shape}; '
                             f'pass --shape {session.static_shape[0]} '
                             f'{session.static_shape[1]} (or export with --dynamic)')
        name = 'onnxruntime' if len(onnx_paths) == 1 else f'onnxruntime {osp.basename(path)}'
        fns[name] = partial(session.run, array)
    with torch.inference_mode():
        return round_robin(fns, repeat, warmup, stat)
