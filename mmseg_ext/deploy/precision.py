"""Reduced-precision ONNX models: static INT8 (QDQ, ONNX Runtime's post-training quantization)
and fp16 for GPU runtimes, with the numerically fragile parts kept in fp32.

Kept in fp32 in both: LayerNormalization and Softmax (their reductions overflow or lose the
small differences that matter in 8 / 16 bits; mmdeploy#337, #2477) and every node of the decode
head (``segmentor.decode_head`` in the exporter's name scopes), as NVIDIA ships SegFormer: an
fp16 encoder with an fp32 head.
"""
import onnx

from .predictor import fit_to

PRECISIONS = ('fp32', 'fp16', 'int8')
FP32_OP_TYPES = ('LayerNormalization', 'Softmax')
# Ops whose inputs INT8 quantizes (ONNX Runtime's QDQ registry has more): the matrix products,
# where the int8 kernels gain time; the others would only add quantize / dequantize pairs.
INT8_OP_TYPES = ('Conv', 'MatMul')
HEAD_SCOPE = 'segmentor.decode_head'
# ONNX opset of a reduced-precision export: 17 is the first with LayerNormalization as one op
# (older opsets decompose it into reductions that overflow in fp16); torch's exporter writes 18
# natively and its down-conversion to 17 is invalid (Split keeps opset 18's num_outputs).
OPSET = 18


def head_nodes(model):
    """Names of the nodes the exporter traced inside the decode head (name-scope metadata)."""
    names = []
    for node in model.graph.node:
        scopes = next((p.value for p in node.metadata_props
                       if p.key == 'pkg.torch.onnx.name_scopes'), '')
        if f"'{HEAD_SCOPE}'" in scopes:
            names.append(node.name)
    if not names:
        raise ValueError('no node carries the decode head\'s name scope '
                         f'({HEAD_SCOPE!r}): export with tools/deployment/pytorch2onnx.py '
                         '(torch.onnx.export(..., dynamo=True)) to keep the head in fp32')
    return names


def activation_products(model):
    """Names of the MatMuls of two activations (attention scores and their weighted sums, the
    LS projections): per-tensor uint8 on both sides loses too much there (MiT-LS lost 1.7 mIoU
    points with them quantized)."""
    constant = {t.name for t in model.graph.initializer}
    names = []
    for node in model.graph.node:
        if node.input and all(i in constant for i in node.input if i):
            constant.update(node.output)
        elif node.op_type == 'MatMul' and not any(i in constant for i in node.input):
            names.append(node.name)
    return names


def int8_dot_product_path(cpuinfo='/proc/cpuinfo'):
    """The x86 instructions ONNX Runtime's int8 kernels (MLAS) run on, from the CPU flags."""
    try:
        with open(cpuinfo) as f:
            flags = set(next((line for line in f if line.startswith('flags')), '').split())
    except OSError:
        return 'unknown (no /proc/cpuinfo)'
    if 'avx512_vnni' in flags:
        return 'AVX-512 VNNI (int8 dot products)'
    if 'avx_vnni' in flags:
        return 'AVX-VNNI (int8 dot products)'
    if 'avx512bw' in flags:
        return 'AVX-512BW without VNNI (no int8 dot product instruction)'
    if 'avx2' in flags:
        return 'AVX2 without VNNI (no int8 dot product instruction)'
    return 'no AVX2 (scalar int8 kernels)'


class ImageReader:
    """ONNX Runtime ``CalibrationDataReader`` over dataset samples (test-pipeline output),
    each resized to a static export's input size."""

    def __init__(self, dataset, count, static_shape):
        self.items = (fit_to(dataset[i]['inputs'].float()[None], static_shape).numpy()
                      for i in range(min(count, len(dataset))))

    def get_next(self):
        image = next(self.items, None)
        return None if image is None else {'image': image}


def static_shape(model):
    dims = model.graph.input[0].type.tensor_type.shape.dim[2:]
    return tuple(d.dim_value for d in dims) if all(d.HasField('dim_value') for d in dims) \
        else None


def quantize_int8(fp32_path, out_path, dataset, num_images, keep_fp32=FP32_OP_TYPES,
                  keep_head=True):
    """Static INT8 post-training quantization of an fp32 export (QDQ format, per-channel
    symmetric int8 weights, uint8 activations with min / max ranges calibrated on the first
    ``num_images`` samples of ``dataset``). Only Conv and MatMul with a weight operand are
    quantized, minus the ops in ``keep_fp32`` and, with ``keep_head``, the decode head. MatMul
    outputs are not requantized: otherwise ONNX Runtime fuses int8 attention scores, Softmax
    and its quantized output into QLinearSoftmax, and LayerNorm / Softmax would read 8-bit
    values."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    model = onnx.load(fp32_path)
    excluded = head_nodes(model) if keep_head else []
    excluded += [n.name for n in model.graph.node if n.op_type in keep_fp32]
    excluded += activation_products(model)
    quantize_static(
        fp32_path, out_path, ImageReader(dataset, num_images, static_shape(model)),
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8, op_types_to_quantize=list(INT8_OP_TYPES),
        nodes_to_exclude=excluded,
        extra_options={'OpTypesToExcludeOutputQuantization': ['MatMul']})
    return out_path


def convert_fp16(fp32_path, out_path, keep_fp32=FP32_OP_TYPES, keep_head=True):
    """fp16 weights and activations, the input and output staying float32; ``keep_fp32`` op
    types and (with ``keep_head``) the decode head run in fp32 behind casts."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    model = onnx.load(fp32_path)
    opset = next(o.version for o in model.opset_import if o.domain in ('', 'ai.onnx'))
    if opset < 17 and 'LayerNormalization' in keep_fp32:
        raise ValueError(f'{fp32_path} has opset {opset}: LayerNormalization is one op from '
                         'opset 17; export it again with opset >= 17')
    model = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=DEFAULT_OP_BLOCK_LIST + list(keep_fp32),
        node_block_list=head_nodes(model) if keep_head else None)
    onnx.save(model, out_path)
    return out_path



def export_at_precision(segmentor, cfg, path, shape, precision, workdir, dynamic=False,
                        output='logits', calib_images=8):
    """Export ``segmentor`` at ``precision`` to ``path``: fp32 straight; fp16 and int8 from an
    fp32 export at opset :data:`OPSET` in ``workdir``, int8 calibrated on ``calib_images`` of
    the config's training images (test pipeline; built-in data of the same layout when absent).
    Returns a line describing what was done."""
    import os.path as osp

    from .onnx import export_onnx
    from .parity import real_samples
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'fp32':
        export_onnx(segmentor, path, shape, dynamic, output)
        return 'fp32'
    fp32_path = osp.join(workdir, 'fp32.onnx')
    export_onnx(segmentor, fp32_path, shape, dynamic, output, opset=OPSET)
    if precision == 'fp16':
        convert_fp16(fp32_path, path)
        return (f'fp16 (opset {OPSET}; {", ".join(FP32_OP_TYPES)} and the decode head in fp32; '
                'GPU runtimes, the gate runs it on CPU)')
    source, dataset = real_samples(cfg, calib_images, osp.join(workdir, 'calibration'),
                                   split='train')
    quantize_int8(fp32_path, path, dataset, calib_images)
    return (f'int8 (static, QDQ, per-channel weights; {" and ".join(INT8_OP_TYPES)} with a '
            'weight operand quantized, '
            f'{", ".join(FP32_OP_TYPES)} and the decode head in fp32; calibrated on '
            f'{min(calib_images, len(dataset))} images of the {source}; int8 kernels: '
            f'{int8_dot_product_path()})')
