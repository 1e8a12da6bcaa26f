"""Inference speed (FPS) of a config's model, as mmseg's benchmark.py measures it.

    python tools/analysis_tools/benchmark.py CONFIG [CHECKPOINT] [--shape H W] [--repeat-times N]
    python tools/analysis_tools/benchmark.py CONFIG CHECKPOINT --shape H W [--onnx FILE]
        [--compile] [--threads N] [--stat {median,min}]

Runs the test pipeline's model on the config's test images when they exist, otherwise on random
inputs of --shape; batch 1, eval mode, after warm-up iterations; prints the mean FPS.

With ``--onnx`` (exports of tools/deployment/pytorch2onnx.py, any precision) and / or
``--compile`` it times the whole segmentor graph (normalisation, network, resize of the
logits; random input of --shape, default 512 x 512) in eager PyTorch, under ONNX Runtime (CPU)
and under ``torch.compile``, side by side in one process with the same thread count, and
prints the median (``--stat min``: fastest) times and their ratios to eager.
"""
import argparse
import os.path as osp
import time

from mmengine.config import DictAction


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', nargs='?',
                        help='checkpoint (optional: the speed does not depend on the weights)')
    parser.add_argument('--shape', type=int, nargs=2, default=None,
                        help='random input H W instead of the test set')
    parser.add_argument('--num-iters', type=int, default=50, help='timed iterations per run')
    parser.add_argument('--warmup', type=int, default=5, help='untimed iterations first')
    parser.add_argument('--repeat-times', type=int, default=1,
                        help='runs; the mean FPS over them is printed')
    parser.add_argument('--device', help='torch device (default: cuda if available, else cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.test_cfg.mode=slide')
    parser.add_argument('--onnx', nargs='+', default=[],
                        help='also time these ONNX exports under ONNX Runtime (CPU), e.g. the '
                        'fp32 and the int8 export of pytorch2onnx.py')
    parser.add_argument('--compile', action='store_true', help='also time torch.compile')
    parser.add_argument('--threads', type=int, help='CPU threads of PyTorch and ONNX Runtime')
    parser.add_argument('--stat', choices=('median', 'min'), default='median',
                        help='with --onnx / --compile: median or fastest of the interleaved runs '
                        '(fastest on a machine shared with other jobs)')
    return parser.parse_args()


def main():
    args = parse_args()
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmseg_ext  # noqa: F401
    from mmseg_ext.apis import load_config
    from mmseg_ext.utils import load_matching_checkpoint
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    cfg = load_config(args.config, args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    from mmengine.registry import MODELS
    if 'init_cfg' in cfg.model.get('backbone', {}):
        cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).to(args.device).eval()
    if args.checkpoint:
        load_matching_checkpoint(model, args.checkpoint)
    if args.onnx or args.compile:
        return compare_backends(model, args)
    root = cfg.test_dataloader.dataset.get('data_root')
    use_data = args.shape is None and root and osp.isdir(root)
    if use_data:
        cfg.test_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
        loader = Runner.build_dataloader(cfg.test_dataloader)
    fps_runs = []
    for _ in range(args.repeat_times):
        batches = iter(loader) if use_data else None
        elapsed, done = 0., 0
        with torch.no_grad():
            for i in range(args.warmup + args.num_iters):
                if use_data:
                    data = next(batches, None)
                    if data is None:
                        batches = iter(loader)
                        data = next(batches)
                    data = model.data_preprocessor(data, False)
                    inputs, samples = data['inputs'], data['data_samples']
                else:
                    inputs, samples = torch.randn(1, 3, *args.shape, device=args.device), None
                if args.device.startswith('cuda'):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                if samples is None:
                    model(inputs, mode='tensor')
                else:
                    model(inputs, samples, mode='predict')
                if args.device.startswith('cuda'):
                    torch.cuda.synchronize()
                if i >= args.warmup:
                    elapsed += time.perf_counter() - t0
                    done += 1
        fps_runs.append(done / elapsed)
        print(f'run {len(fps_runs)}: {fps_runs[-1]:.2f} img/s')
    print(f'Average fps of {args.repeat_times} runs: {sum(fps_runs) / len(fps_runs):.2f}')


def compare_backends(model, args):
    import torch

    from mmseg_ext.deploy.precision import int8_dot_product_path
    from mmseg_ext.deploy.speed import time_backends
    shape = tuple(args.shape or (512, 512))
    ms = time_backends(model.eval(), shape, args.onnx, args.compile, args.num_iters,
                       args.warmup, args.threads, args.stat)
    print(f'{shape[0]}x{shape[1]}, batch 1, {args.threads or torch.get_num_threads()} threads, '
          f'{args.stat} of {args.num_iters} interleaved runs (int8 kernels: '
          f'{int8_dot_product_path()}):')
    width = max(map(len, ms))
    for name, value in ms.items():
        print(f'  {name:{width}s} {value:9.1f} ms   eager / this '
              f'{ms["pytorch eager"] / value:.2f}x')


if __name__ == '__main__':
    main()
