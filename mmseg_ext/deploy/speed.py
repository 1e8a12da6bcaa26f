"""Eager PyTorch, ``torch.compile`` and ONNX Runtime timed side by side on one input."""
import torch

from ..utils.timing import round_robin
from .graph import SegmentorGraph
from .onnx import OnnxSegmentor


def time_backends(segmentor, shape, onnx_path=None, compile=False, repeat=20, warmup=3,
                  threads=None):
    """Median ms per forward of :class:`SegmentorGraph` on one random ``[1, 3, H, W]`` image:
    eager, and optionally compiled and under ONNX Runtime (same thread count), interleaved."""
    if threads:
        torch.set_num_threads(threads)
    graph = SegmentorGraph(segmentor).eval()
    image = torch.rand(1, 3, *shape) * 255
    fns = {'pytorch eager': lambda: graph(image)}
    if compile:
        compiled = torch.compile(graph)
        fns['torch.compile'] = lambda: compiled(image)
    if onnx_path:
        session = OnnxSegmentor(onnx_path, threads or torch.get_num_threads())
        if session.static_shape not in (None, tuple(shape)):
            raise ValueError(f'{onnx_path} was exported for inputs {session.static_shape}; '
                             f'pass --shape {session.static_shape[0]} '
                             f'{session.static_shape[1]} (or export with --dynamic)')
        array = image.numpy()
        fns['onnxruntime'] = lambda: session.run(array)
    with torch.inference_mode():
        return round_robin(fns, repeat, warmup)
