"""CPU speed of two torch builds on the ops of MiT-B0 / MiT-B2 at 512x512 (pure torch).

The standard torch wheel (CUDA libraries bundled) and the ``+cpu`` wheel cannot be imported in
one process, so the comparison alternates child processes: round 1 runs build A then build B,
round 2 runs B then A, and so on; each child times every op (median of ``--repeats`` calls after
warm-up) and the medians over rounds are compared as time(B) / time(A).

    # time the ops in this interpreter
    python tools/analysis_tools/benchmark_torch_build.py
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


def time_ops(threads, repeats, warmup):
    """{op name: median seconds} for this interpreter's torch."""
    import torch
    torch.set_num_threads(threads)
    result = {}
    with torch.inference_mode():
        for name, fn in ops(torch):
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            result[name] = statistics.median(times)
    return dict(torch=torch.__version__, threads=torch.get_num_threads(), ops=result)


def run_child(python, args):
    cmd = [python, __file__, '--threads', str(args.threads), '--repeats', str(args.repeats),
           '--warmup', str(args.warmup), '--json']
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(args):
    a, b = args.compare
    runs = {a: [], b: []}
    for i in range(args.rounds):
        for python in ((a, b) if i % 2 == 0 else (b, a)):
            runs[python].append(run_child(python, args))
            print(f'round {i + 1}/{args.rounds}: {python} (torch {runs[python][-1]["torch"]}) done',
                  file=sys.stderr)
    names = list(runs[a][0]['ops'])
    label_a, label_b = runs[a][0]['torch'], runs[b][0]['torch']
    print(f'| op ({args.threads} threads) | torch {label_a} (ms) | torch {label_b} (ms) | '
          f'ratio {label_b} / {label_a} |')
    print('|---|---:|---:|---:|')
    ratios = []
    for name in names:
        ta = statistics.median(r['ops'][name] for r in runs[a]) * 1e3
        tb = statistics.median(r['ops'][name] for r in runs[b]) * 1e3
        ratios.append(tb / ta)
        print(f'| {name} | {ta:.2f} | {tb:.2f} | {tb / ta:.2f} |')
    geo = statistics.geometric_mean(ratios)
    print(f'| geometric mean of the ratios | | | {geo:.3f} |')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--compare', nargs=2, metavar=('PYTHON_A', 'PYTHON_B'),
                        help='two interpreters to compare, alternating child processes')
    parser.add_argument('--rounds', type=int, default=6, help='child runs per interpreter')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--json', action='store_true', help='print one JSON line (child mode)')
    args = parser.parse_args()
    if args.compare:
        compare(args)
        return
    result = time_ops(args.threads, args.repeats, args.warmup)
    if args.json:
        print(json.dumps(result))
        return
    print(f'torch {result["torch"]}, {result["threads"]} threads')
    for name, seconds in result['ops'].items():
        print(f'{seconds * 1e3:9.2f} ms  {name}')


if __name__ == '__main__':
    main()
