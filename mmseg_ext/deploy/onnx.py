"""ONNX export of a segmentor (torch.export + onnxscript) and its ONNX Runtime session."""
import numpy as np
import torch

from .graph import OUTPUTS, SegmentorGraph

# Smallest / largest input side of a --dynamic export. From 64 px up, every sequence reduction
# of MiT (stride 8 at 1/4, 4 at 1/8, 2 at 1/16) keeps at least 2 tokens per side; torch 2.6's
# exporter specialises a size that can be 1 and refuses the range. The upper bound only has to
# be generous.
MIN_SIDE, MAX_SIDE = 64, 8192


def export_onnx(segmentor, path, shape, dynamic=False, output='logits', opset=None):
    """Export ``SegmentorGraph(segmentor, output)`` to ``path`` with torch's exporter
    (``torch.onnx.export(..., dynamo=True)``, onnxscript), traced at input ``shape`` (H, W).
    ``dynamic`` makes H and W symbolic (batch stays 1). Input ``image``, output ``output``;
    ``opset``: the exporter's default when None."""
    graph = SegmentorGraph(segmentor, output).eval()
    example = torch.rand(1, 3, *shape) * 255
    dynamic_shapes = None
    if dynamic:
        dims = [torch.export.Dim(name, min=MIN_SIDE, max=MAX_SIDE) for name in ('height', 'width')]
        dynamic_shapes = {'image': {2: dims[0], 3: dims[1]}}
    with torch.no_grad():
        torch.onnx.export(graph, (example, ), path, dynamo=True, input_names=['image'],
                          output_names=[output], dynamic_shapes=dynamic_shapes,
                          external_data=False, opset_version=opset)
    return path


def _logits_of_labels_graph(model):
    """Name of the logits value a label-map graph computes its ``labels`` from: walk back from
    the output through casts / squeezes / comparisons to the ArgMax or Sigmoid input."""
    producer = {out: node for node in model.graph.node for out in node.output}
    node = producer[model.graph.output[0].name]
    while node.op_type not in ('ArgMax', 'Sigmoid'):
        node = producer[node.input[0]]
    return node.input[0]


class OnnxSegmentor:
    """An exported :class:`SegmentorGraph` under ONNX Runtime on CPU.

    ``run(image)`` takes the graph's input (``[1, 3, H, W]`` float32, 0-255) and returns its
    output as a numpy array. With ``with_logits=True`` a label-map export also returns the
    logits it argmaxes (exposed as an extra output of an in-memory copy), so that the parity
    gate can compare logits for either kind of export.
    """

    def __init__(self, path, threads=None, with_logits=False):
        import onnx
        import onnxruntime as ort
        model = onnx.load(path)
        self.output = model.graph.output[0].name
        if self.output not in OUTPUTS:
            raise ValueError(f'{path} is not an exported segmentor: its output is '
                             f'{self.output!r}, expected one of {OUTPUTS} '
                             '(tools/deployment/pytorch2onnx.py writes them)')
        dims = model.graph.input[0].type.tensor_type.shape.dim
        self.static_shape = (None if not all(d.HasField('dim_value') for d in dims[2:]) else
                             tuple(d.dim_value for d in dims[2:]))
        if with_logits and self.output == 'labels':
            model.graph.output.append(onnx.helper.make_tensor_value_info(
                _logits_of_labels_graph(model), onnx.TensorProto.FLOAT, None))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # no warnings about unused initialisers
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), options,
                                            providers=['CPUExecutionProvider'])

    def run(self, image, all_outputs=False):
        outs = self.session.run(None, {'image': np.ascontiguousarray(image, np.float32)})
        return outs if all_outputs else outs[0]
