"""Export a segmentor to ONNX and check the export against PyTorch on real images (the logic of
tools/deployment/pytorch2onnx.py; the graph, the gate and the precisions: docs/deployment.md)."""
import tempfile


def export_and_verify(config, checkpoint, out, shape=None, dynamic=False, output='logits',
                      num_images=10, min_agreement=None, threads=None, verify_only=False,
                      precision='fp32', calib_images=8, max_miou_drop=0.5, cfg_options=None,
                      random_init=False):
    """Export ``config``'s segmentor (unless ``verify_only``) to ``out`` and run the parity gate
    on the test images; prints the report and returns whether the gate passed.
    ``min_agreement`` is in percent (None: the gate's default); ``precision``: 'fp32', 'fp16' or
    'int8'; ``random_init``: ``checkpoint`` is None on purpose."""
    from ..apis import init_segmentor, load_config
    from .parity import parity_gate, real_samples
    from .precision import export_at_precision
    cfg = load_config(config, cfg_options)
    model = init_segmentor(cfg, checkpoint or None)
    if random_init:
        print('--random-init: exporting randomly initialised (untrained) weights')
    reduced = precision != 'fp32'
    gate_options = {} if min_agreement is None else \
        dict(min_agreement=min_agreement / 100)
    with tempfile.TemporaryDirectory() as workdir:
        if not verify_only:
            shape = shape or cfg.model.data_preprocessor.get('size') or (512, 512)
            what = export_at_precision(model, cfg, out, tuple(shape), precision,
                                       workdir, dynamic, output, calib_images)
            kind = 'H x W free' if dynamic else f'{shape[0]} x {shape[1]}'
            print(f'wrote {out} (input image [1, 3, {kind}], output {output}; '
                  f'{what})')
        source, dataset = real_samples(cfg, num_images, workdir)
        report = parity_gate(model, out, dataset, source, num_images, threads,
                             precision=precision,
                             max_miou_drop=max_miou_drop if reduced else None,
                             **gate_options)
    print(report.summary())
    return report.passed
