"""SegFormer side by side with its peers, in one process: our MiT / SegFormer against mmseg 1.x
(MixVisionTransformer + SegformerHead) and HF transformers (SegformerModel /
SegformerForSemanticSegmentation), batch 1, eval mode, same weights for the backbones.

Prints, per arch: median latency (ms) of the backbone alone and of the full model, the ratio
peer / ours (> 1 means we are faster), peak memory of one forward (growth of the process's
peak RSS, each model in its own process), and one training step (forward + backward + AdamW)
against mmseg's SegFormer. Timings alternate between the models
round by round so that machine noise hits all of them alike.

    python tools/analysis_tools/benchmark_vs_peers.py --archs b0 b5 --threads 2
"""
import argparse
import ctypes
import gc
import json
import statistics
import subprocess
import sys
import time

ARCH = {
    'b0': dict(dims=[32, 64, 160, 256], depths=[2, 2, 2, 2], head=256),
    'b1': dict(dims=[64, 128, 320, 512], depths=[2, 2, 2, 2], head=256),
    'b2': dict(dims=[64, 128, 320, 512], depths=[3, 4, 6, 3], head=768),
    'b3': dict(dims=[64, 128, 320, 512], depths=[3, 4, 18, 3], head=768),
    'b4': dict(dims=[64, 128, 320, 512], depths=[3, 8, 27, 3], head=768),
    'b5': dict(dims=[64, 128, 320, 512], depths=[3, 6, 40, 3], head=768),
}
NUM_CLASSES = 150


def build_models(arch, only=None):
    """{name: (backbone, full model)}; mmseg's backbone weights are copied into ours.
    ``only`` builds one of them (for the memory measurement). A full model is backbone + decode
    head returning 1/4-resolution logits (what each peer's model does)."""
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)

    # isort: split
    import torch
    import transformers
    from mmseg.models.backbones import MixVisionTransformer
    from mmseg.models.decode_heads import SegformerHead
    from torch import nn

    from mmseg_ext.models.backbones.mit import MiT, convert_mit_state_dict
    from mmseg_ext.models.decode_heads import AllMLPHead

    a = ARCH[arch]
    bn = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    models = {}
    if only in (None, 'mmseg_ext'):
        ours = MiT(arch=arch)
        ours.init_weights()
        models['mmseg_ext'] = (ours, nn.Sequential(ours, AllMLPHead(
            in_channels=a['dims'], in_index=[0, 1, 2, 3], channels=a['head'],
            num_classes=NUM_CLASSES, norm_cfg=bn, align_corners=False)))
    if only in (None, 'mmseg'):
        mmseg_bb = MixVisionTransformer(embed_dims=a['dims'][0], num_layers=a['depths'],
                                        num_heads=[1, 2, 5, 8], drop_path_rate=0.1)
        models['mmseg'] = (mmseg_bb, nn.Sequential(mmseg_bb, SegformerHead(
            in_channels=a['dims'], in_index=[0, 1, 2, 3], channels=256,
            num_classes=NUM_CLASSES, norm_cfg=bn, align_corners=False)))
        if only is None:
            ours.load_state_dict(convert_mit_state_dict(mmseg_bb.state_dict()))
    if only in (None, 'transformers'):
        config = transformers.SegformerConfig(
            hidden_sizes=a['dims'], depths=a['depths'], decoder_hidden_size=a['head'],
            num_labels=NUM_CLASSES)
        hf_full = transformers.SegformerForSemanticSegmentation(config).eval()
        models['transformers'] = (
            lambda x: hf_full.segformer(pixel_values=x, output_hidden_states=True).hidden_states,
            lambda x: hf_full(pixel_values=x).logits)
    for backbone, full in models.values():
        if isinstance(backbone, nn.Module):
            backbone.eval(), full.eval()
    return models


def time_round_robin(fns, x, repeat, warmup=2):
    import torch
    times = {name: [] for name in fns}
    with torch.inference_mode():
        for _ in range(warmup):
            for fn in fns.values():
                fn(x)
        for _ in range(repeat):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - t0)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def train_step_ms(model, x, target, repeat):
    import torch
    from torch import nn
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        logits = model(x)
        loss = nn.functional.cross_entropy(
            nn.functional.interpolate(logits, x.shape[2:], mode='bilinear'), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step allocates optimizer state
            times.append(time.perf_counter() - t0)
    model.eval()
    return 1000 * statistics.median(times)


def peak_memory_child(arch, name, part, shape):
    """Peak RSS growth (MiB) of one forward, measured in a fresh process of this script."""
    cmd = [sys.executable, __file__, '--memory-child', arch, name, str(part), '--threads', '1',
           '--shape', *map(str, shape)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _status_mib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024


def memory_child(arch, name, part, shape):
    """Build only this model, reset the kernel's peak-RSS mark (/proc/self/clear_refs), run
    one forward, print VmHWM - VmRSS before the forward."""
    import torch
    model = build_models(arch, only=name)[name][part]
    x = torch.randn(1, 3, *shape)
    gc.collect()
    ctypes.CDLL('libc.so.6').malloc_trim(0)  # return freed heap: count the forward's own pages
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base = _status_mib('VmRSS')
    with torch.inference_mode():
        model(x)
    print(_status_mib('VmHWM') - base)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+', default=['b0', 'b5'], choices=list(ARCH),
                        help='MiT variants to compare')
    parser.add_argument('--shape', nargs=2, type=int, default=[512, 512],
                        help='input height and width')
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
    parser.add_argument('--repeat', type=int, default=10,
                        help='timed rounds per model; the median is reported')
    parser.add_argument('--train-repeat', type=int, default=3,
                        help='timed training steps per model')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory columns')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--memory-child', nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    if args.memory_child:
        arch, name, part = args.memory_child
        return memory_child(arch, name, int(part), args.shape)
    x = torch.randn(1, 3, *args.shape)
    results = []
    print(f'torch {torch.__version__}, {args.threads} threads, input 1x3x{args.shape[0]}x'
          f'{args.shape[1]}, median of {args.repeat}')
    for arch in args.archs:
        models = build_models(arch)
        for part, label in ((0, 'backbone'), (1, 'full model')):
            ms = time_round_robin({n: m[part] for n, m in models.items()}, x, args.repeat)
            row = dict(arch=arch, part=label, ms=ms,
                       ratio={n: ms[n] / ms['mmseg_ext'] for n in ms if n != 'mmseg_ext'})
            if not args.no_memory:
                row['peak_mib'] = {n: peak_memory_child(arch, n, part, args.shape)
                                   for n in models}
            results.append(row)
            mem = '' if args.no_memory else '  peak MiB ' + ', '.join(
                f'{n} {v:.0f}' for n, v in row['peak_mib'].items())
            print(f'{arch} {label:10s} ' + ', '.join(f'{n} {v:.1f} ms' for n, v in ms.items()) +
                  '  ratio ' + ', '.join(f'{n}/ours {v:.2f}' for n, v in row['ratio'].items()) +
                  mem)
        target = torch.randint(0, NUM_CLASSES, (1, *args.shape))
        step = {n: train_step_ms(models[n][1], x, target, args.train_repeat)
                for n in ('mmseg_ext', 'mmseg')}
        results.append(dict(arch=arch, part='train step', ms=step,
                            ratio={'mmseg': step['mmseg'] / step['mmseg_ext']}))
        print(f'{arch} train step  ' + ', '.join(f'{n} {v:.1f} ms' for n, v in step.items()) +
              f'  ratio mmseg/ours {step["mmseg"] / step["mmseg_ext"]:.2f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
