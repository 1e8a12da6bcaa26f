"""Deployment: the segmentor as one tensor program (:class:`SegmentorGraph`), its ONNX export
with a parity gate against PyTorch, and one predictor API over PyTorch, ``torch.compile`` and
ONNX Runtime (tools/deployment/pytorch2onnx.py, tools/infer.py, benchmark.py); INT8 and fp16
exports with the fragile parts kept in fp32 (``precision``)."""
from .graph import SegmentorGraph, logits_to_labels, resize_logits
from .onnx import OnnxSegmentor, export_onnx
from .parity import ParityReport, parity_gate, real_samples
from .precision import export_at_precision
from .predictor import Predictor, build_predictor

__all__ = ['OnnxSegmentor', 'ParityReport', 'Predictor', 'SegmentorGraph', 'build_predictor',
           'export_at_precision', 'export_onnx', 'logits_to_labels', 'parity_gate', 'real_samples',
           'resize_logits']
