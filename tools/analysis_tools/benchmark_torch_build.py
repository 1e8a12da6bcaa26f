"""CPU speed of two torch builds on the ops of MiT-B0 / MiT-B2 at 512x512 (pure torch).

The standard torch wheel (CUDA libraries bundled) and the ``+cpu`` wheel cannot be imported in
one process, so the comparison runs one child process per build and alternates between them op
by op: for every op and round, A times it (the fastest of ``--repeats`` calls after warm-up), then
B, the next round B first. The fastest time over the rounds of each build is compared as
time(B) / time(A). The minimum, not the median: on a shared machine a call that loses its cores
to another process is slower for reasons that have nothing to do with the build, never faster.

    # compare two interpreters (e.g. two virtual environments), alternating
    python tools/analysis_tools/benchmark_torch_build.py \\
        --compare /tmp/venv_cpu/bin/python .venv/bin/python --rounds 6 --threads 2

Shapes: batch 1, 512x512 input, so stage 1 has 128x128 = 16384 tokens (SegFormer's ADE20K crop).
"""
import argparse
import json
import statistics
import subprocess
import sys
import time


def ops(torch):
    """(name, callable) pairs; every tensor is built here, outside the timed call."""
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g)

    n1, n2 = 128 * 128, 64 * 64  # stage-1 / stage-2 tokens at 512x512
    table = []
    for arch, c1, c2 in (('b0', 32, 64), ('b2', 64, 128)):
        x1, x2 = rand(1, n1, c1), rand(1, n2, c2)
        fc1 = torch.nn.Linear(c1, 4 * c1)
        q_proj = torch.nn.Linear(c2, c2)
        img = rand(1, 3, 512, 512)
        embed = torch.nn.Conv2d(3, c1, 7, 4, 3)
        hidden = rand(1, 4 * c1, 128, 128)
        dw = torch.nn.Conv2d(4 * c1, 4 * c1, 3, 1, 1, groups=4 * c1)
        fmap = rand(1, c1, 128, 128)
        sr = torch.nn.Conv2d(c1, c1, 8, 8)
        q = rand(1, 1, n1, c1)
        kv = rand(1, 1, n1 // 64, c1)
        q2 = rand(1, 2, n2, c2 // 2)
        kv2 = rand(1, 2, n2 // 16, c2 // 2)
        ln = torch.nn.LayerNorm(c1)
        h1 = rand(1, n1, 4 * c1)
        table += [
            (f'{arch} linear stage1 fc1 ({n1}x{c1} -> {4 * c1})', lambda m=fc1, x=x1: m(x)),
            (f'{arch} linear stage2 q ({n2}x{c2} -> {c2})', lambda m=q_proj, x=x2: m(x)),
            (f'{arch} conv 7x7/4 patch embed (3 -> {c1})', lambda m=embed, x=img: m(x)),
            (f'{arch} conv 8x8/8 reduction ({c1})', lambda m=sr, x=fmap: m(x)),
            (f'{arch} depthwise conv 3x3 ({4 * c1} ch, 128x128)', lambda m=dw, x=hidden: m(x)),
            (f'{arch} SDPA stage1 (1 head, {n1} x {n1 // 64})',
             lambda a=q, b=kv: F.scaled_dot_product_attention(a, b, b)),
            (f'{arch} SDPA stage2 (2 heads, {n2} x {n2 // 16})',
             lambda a=q2, b=kv2: F.scaled_dot_product_attention(a, b, b)),
            (f'{arch} LayerNorm ({n1}x{c1})', lambda m=ln, x=x1: m(x)),
            (f'{arch} GELU ({n1}x{4 * c1})', lambda x=h1: F.gelu(x)),
        ]
    return table


def serve(threads, repeats, warmup):
    """Child mode: read op indices from stdin, answer the fastest time of each (seconds)."""
    import torch
    torch.set_num_threads(threads)
    table = ops(torch)
    print(json.dumps(dict(torch=torch.__version__, ops=[name for name, _ in table])), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            fn = table[int(line)][1]
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            print(min(times), flush=True)


def compare(args):
    children = [subprocess.Popen(
        [python, __file__, '--serve', '--threads', str(args.threads), '--repeats',
         str(args.repeats), '--warmup', str(args.warmup)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for python in args.compare]
    info = [json.loads(child.stdout.readline()) for child in children]
    names = info[0]['ops']
    best = [[float('inf')] * len(names) for _ in children]
    for r in range(args.rounds):
        for k in range(len(names)):
            for c in (0, 1) if (r + k) % 2 == 0 else (1, 0):
                children[c].stdin.write(f'{k}\n')
                children[c].stdin.flush()
                best[c][k] = min(best[c][k], float(children[c].stdout.readline()))
        print(f'round {r + 1}/{args.rounds} done', file=sys.stderr)
    for child in children:
        child.stdin.close()
        child.wait()
    label_a, label_b = info[0]['torch'], info[1]['torch']
    print(f'| op ({args.threads} threads) | torch {label_a} (ms) | torch {label_b} (ms) | '
          f'ratio {label_b} / {label_a} |')
    print('|---|---:|---:|---:|')
    ratios = []
    for k, name in enumerate(names):
        ta, tb = best[0][k] * 1e3, best[1][k] * 1e3
        ratios.append(tb / ta)
        print(f'| {name} | {ta:.2f} | {tb:.2f} | {tb / ta:.2f} |')
    print(f'| geometric mean of the ratios | | | {statistics.geometric_mean(ratios):.3f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--compare', nargs=2, metavar=('PYTHON_A', 'PYTHON_B'),
                        help='the two interpreters (environments) to compare')
    parser.add_argument('--rounds', type=int, default=6, help='timings per op and build')
    parser.add_argument('--threads', type=int, default=2, help='torch intra-op threads')
    parser.add_argument('--repeats', type=int, default=15,
                        help='calls per timing; the fastest is taken')
    parser.add_argument('--warmup', type=int, default=3, help='untimed calls first')
    parser.add_argument('--serve', action='store_true', help='child mode (used by --compare)')
    args = parser.parse_args()
    if args.serve:
        serve(args.threads, args.repeats, args.warmup)
    elif args.compare:
        compare(args)
    else:
        parser.error('give --compare PYTHON_A PYTHON_B')


if __name__ == '__main__':
    main()
