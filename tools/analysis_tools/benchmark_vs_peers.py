"""SegFormer side by side with its peers in one process: our MiT / SegFormer against mmseg 1.x
(MixVisionTransformer + its 256-wide SegformerHead) and HF transformers
(SegformerForSemanticSegmentation, the paper's head like ours), batch 1, same backbone weights.

Per case (arch at a square input size) it measures, as ratios peer time / our time (> 1: we are
faster):

* the backbone and the full model (1/4-resolution logits), eval mode, ``torch.inference_mode``;
* one training step (forward, cross-entropy at input resolution, backward, AdamW step);
* peak memory: growth of the peak RSS during one forward, and during two training steps
  (activations, gradients and optimizer state), each model built alone in a fresh process.

Timings alternate between the models round by round (ours, mmseg, transformers, ours, ...) and
report the median, so that load from other processes hits every model alike; the load average
before and after is recorded. It prints a markdown table (docs/benchmarks.md) and writes JSON:

    python tools/analysis_tools/benchmark_vs_peers.py --threads 2 --json docs/benchmarks_cpu.json
    python tools/analysis_tools/benchmark_vs_peers.py --cases b0:512 b2:512 --no-memory
"""
import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys

ARCH = {
    'b0': dict(dims=[32, 64, 160, 256], depths=[2, 2, 2, 2], head=256),
    'b1': dict(dims=[64, 128, 320, 512], depths=[2, 2, 2, 2], head=256),
    'b2': dict(dims=[64, 128, 320, 512], depths=[3, 4, 6, 3], head=768),
    'b3': dict(dims=[64, 128, 320, 512], depths=[3, 4, 18, 3], head=768),
    'b4': dict(dims=[64, 128, 320, 512], depths=[3, 8, 27, 3], head=768),
    'b5': dict(dims=[64, 128, 320, 512], depths=[3, 6, 40, 3], head=768),
}
DEFAULT_CASES = ['b0:512', 'b1:512', 'b2:512', 'b3:512', 'b4:512', 'b5:512', 'b5:640']
NUM_CLASSES = 150
PEERS = ('mmseg', 'transformers')
# Issue 13's targets: full model and training step against mmseg's full model, backbone
# against the faster peer backbone.
MODEL_TARGET = {'b0': 1.2, 'b1': 1.2}
BACKBONE_TARGET = 1.2


def build_models(arch, only=None):
    """{name: (backbone, full model)}; mmseg's backbone weights are copied into ours.
    ``only`` builds one of them (for the memory measurements). A full model is backbone + decode
    head returning 1/4-resolution logits (what each peer's model does)."""
    import mmseg_ext  # noqa: F401, I001  (first: its compat fixes let mmseg / mmdet import)
    import torch
    from torch import nn
    a = ARCH[arch]
    bn = dict(type='BN', requires_grad=True)
    torch.manual_seed(0)
    models = {}
    if only in (None, 'mmseg_ext'):
        from mmseg_ext.models.backbones.mit import MiT
        from mmseg_ext.models.decode_heads import AllMLPHead
        ours = MiT(arch=arch)
        ours.init_weights()
        models['mmseg_ext'] = (ours, nn.Sequential(ours, AllMLPHead(
            in_channels=a['dims'], in_index=[0, 1, 2, 3], channels=a['head'],
            num_classes=NUM_CLASSES, norm_cfg=bn, align_corners=False)))
    if only in (None, 'mmseg'):
        from mmseg.models.backbones import MixVisionTransformer
        from mmseg.models.decode_heads import SegformerHead
        mmseg_bb = MixVisionTransformer(embed_dims=a['dims'][0], num_layers=a['depths'],
                                        num_heads=[1, 2, 5, 8], drop_path_rate=0.1)
        models['mmseg'] = (mmseg_bb, nn.Sequential(mmseg_bb, SegformerHead(
            in_channels=a['dims'], in_index=[0, 1, 2, 3], channels=256,
            num_classes=NUM_CLASSES, norm_cfg=bn, align_corners=False)))
        if only is None:
            from mmseg_ext.models.backbones.mit import convert_mit_state_dict
            ours.load_state_dict(convert_mit_state_dict(mmseg_bb.state_dict()))
    if only in (None, 'transformers'):
        import transformers
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


def inference(model, x):
    import torch

    def run():
        with torch.inference_mode():
            model(x)
    return run


def training_step(model, x, target):
    """A closure running one step; the model stays in train mode, AdamW state is created in
    the warm-up call."""
    import torch
    from torch import nn
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def run():
        logits = model(x)
        loss = nn.functional.cross_entropy(
            nn.functional.interpolate(logits, x.shape[2:], mode='bilinear'), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run


def _status_mib(field):
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024


def memory_child(arch, name, mode, size):
    """Build only this model, reset the kernel's peak-RSS mark (/proc/self/clear_refs), then run
    one forward (``mode`` 'infer') or two training steps ('train'); print VmHWM growth in MiB."""
    import torch
    full = build_models(arch, only=name)[name][1]
    x = torch.randn(1, 3, size, size)
    if mode == 'train':
        run = training_step(full, x, torch.randint(0, NUM_CLASSES, (1, size, size)))
        steps = 2
    else:
        run, steps = inference(full, x), 1
    gc.collect()
    ctypes.CDLL('libc.so.6').malloc_trim(0)  # return freed heap: count the run's own pages
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    base = _status_mib('VmRSS')
    for _ in range(steps):
        run()
    print(_status_mib('VmHWM') - base)


def peak_mib(arch, name, mode, size, threads):
    cmd = [sys.executable, __file__, '--memory-child', arch, name, mode, str(size),
           '--threads', str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def bench_case(arch, size, args):
    import torch

    from mmseg_ext.utils.timing import round_robin
    models = build_models(arch)
    x = torch.randn(1, 3, size, size)
    target = torch.randint(0, NUM_CLASSES, (1, size, size))
    row = dict(arch=arch, size=size)
    for part, index in (('backbone', 0), ('full model', 1)):
        row[part] = round_robin({n: inference(m[index], x) for n, m in models.items()},
                                args.repeat)
    train_models = ['mmseg_ext', *args.train_peers]
    row['train step'] = round_robin(
        {n: training_step(models[n][1], x, target) for n in train_models}, args.train_repeat)
    if not args.no_memory:
        row['peak MiB, forward'] = {n: peak_mib(arch, n, 'infer', size, args.threads)
                                    for n in models}
        row['peak MiB, train'] = {n: peak_mib(arch, n, 'train', size, args.threads)
                                  for n in train_models}
    best_peer = min(row['backbone'][p] for p in PEERS)
    row['ratios'] = {
        'backbone vs best peer': best_peer / row['backbone']['mmseg_ext'],
        'full model vs mmseg': row['full model']['mmseg'] / row['full model']['mmseg_ext'],
        'full model vs transformers': (row['full model']['transformers'] /
                                       row['full model']['mmseg_ext']),
        'train step vs mmseg': row['train step']['mmseg'] / row['train step']['mmseg_ext'],
    }
    return row


def _mark(value, target):
    return f'**{value:.2f}**' if value >= target else f'{value:.2f} (miss, target {target})'


def table(rows):
    """Markdown: one line per case; ratios in bold where the issue's target is met."""
    lines = ['| case | backbone ms ours / mmseg / HF | backbone: best peer / ours | '
             'full model ms ours / mmseg / HF | full: mmseg / ours | full: HF / ours | '
             'train step ms ours / mmseg | train: mmseg / ours | peak train MiB ours / mmseg |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        target = MODEL_TARGET.get(r['arch'], 1.0)
        ratio = r['ratios']
        ms = {p: ' / '.join(f'{r[p][n]:.0f}' for n in ('mmseg_ext', *PEERS))
              for p in ('backbone', 'full model')}
        mem = '-'
        if 'peak MiB, train' in r:
            ours, peer = r['peak MiB, train']['mmseg_ext'], r['peak MiB, train']['mmseg']
            mem = f'{ours:.0f} / {peer:.0f}' + ('' if ours <= peer else ' (miss)')
        lines.append(
            f"| {r['arch'].upper()} {r['size']}² | {ms['backbone']} | "
            f"{_mark(ratio['backbone vs best peer'], BACKBONE_TARGET)} | {ms['full model']} | "
            f"{_mark(ratio['full model vs mmseg'], target)} | "
            f"{ratio['full model vs transformers']:.2f} | "
            f"{r['train step']['mmseg_ext']:.0f} / {r['train step']['mmseg']:.0f} | "
            f"{_mark(ratio['train step vs mmseg'], target)} | {mem} |")
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', default=DEFAULT_CASES,
                        help='ARCH:SIZE items (square inputs), e.g. b0:512 b5:640')
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
    parser.add_argument('--repeat', type=int, default=10, help='inference rounds (median)')
    parser.add_argument('--train-repeat', type=int, default=3, help='training-step rounds')
    parser.add_argument('--train-peers', nargs='*', default=['mmseg'], choices=PEERS,
                        help='peers timed in training too (default: mmseg)')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory columns')
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--memory-child', nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    if args.memory_child:
        arch, name, mode, size = args.memory_child
        return memory_child(arch, name, mode, int(size))
    cases = []
    for case in args.cases:
        arch, _, size = case.partition(':')
        if arch not in ARCH or not size.isdigit():
            parser.error(f'--cases item {case!r}: expected ARCH:SIZE with ARCH in '
                         f'{sorted(ARCH)}, e.g. b2:512')
        cases.append((arch, int(size)))
    import mmseg
    import transformers
    meta = dict(torch=torch.__version__, mmseg=mmseg.__version__,
                transformers=transformers.__version__, threads=args.threads,
                repeat=args.repeat, train_repeat=args.train_repeat, cpu_count=os.cpu_count(),
                command=' '.join([os.path.relpath(__file__), *sys.argv[1:]]),
                load_before=os.getloadavg()[0])
    print(f"torch {meta['torch']}, mmseg {meta['mmseg']}, transformers {meta['transformers']}, "
          f'{args.threads} threads, batch 1, medians of {args.repeat} (train: '
          f'{args.train_repeat}) interleaved rounds; load average {meta["load_before"]:.1f}',
          flush=True)
    rows = []
    for arch, size in cases:
        rows.append(bench_case(arch, size, args))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    meta['load_after'] = os.getloadavg()[0]
    print(f'\nload average {meta["load_before"]:.1f} before, {meta["load_after"]:.1f} after\n')
    print(table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(meta=meta, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
