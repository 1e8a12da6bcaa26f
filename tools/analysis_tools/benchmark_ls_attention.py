"""Time and peak memory of Long-Short attention vs. full attention as the token count grows.

Full attention is ``qkv Linear -> F.scaled_dot_product_attention -> proj Linear``; LS attention is
:class:`LSAttention1d` (1D sequences) or :class:`LSAttention2d` (square maps), same width and heads.
For each size it prints time (the fastest of ``--repeats`` calls after one warm-up call: robust on a
shared machine) and peak memory,
then the log-log slope of time (and memory) vs. N and the smallest N where LS is faster.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` minus the memory held before the call.
On CPU the resident-set high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``)
minus the RSS before the call, measured on the warm-up call. The script re-executes itself with
``MALLOC_MMAP_THRESHOLD_=65536`` so that glibc returns freed tensors to the OS and the RSS after
one call is a fair baseline for the next. Note: PyTorch's CPU SDPA is a flash-style kernel that
never materialises the N x N scores, so full attention's memory is also ~linear; its time is not.

    python tools/analysis_tools/benchmark_ls_attention.py --quick
"""
import argparse
import math
import os
import re
import sys
import time

MMAP_ENV = 'MALLOC_MMAP_THRESHOLD_'


def full_attention(embed_dims, num_heads):
    """Plain multi-head softmax attention over all N tokens, O(N^2) time."""
    import torch.nn as nn
    import torch.nn.functional as F

    class FullAttention(nn.Module):

        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(embed_dims, 3 * embed_dims)
            self.proj = nn.Linear(embed_dims, embed_dims)

        def forward(self, x, *args):
            b, n, c = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
            out = F.scaled_dot_product_attention(q, k, v)
            return self.proj(out.transpose(1, 2).reshape(b, n, c))

    return FullAttention()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dims', type=int, default=64, help='embedding width C')
    parser.add_argument('--heads', type=int, default=2, help='attention heads')
    parser.add_argument('--window-1d', type=int, default=64, help='1D: short-term window w')
    parser.add_argument('--rank-1d', type=int, default=16, help='1D: dynamic projection rank r')
    parser.add_argument('--window-2d', type=int, default=8, help='2D: window w (w x w tiles)')
    parser.add_argument('--rank-2d', type=int, default=8, help='2D: dynamic projection rank r')
    parser.add_argument('--sizes-1d', type=int, nargs='+',
                        default=[1024, 2048, 4096, 8192, 16384], help='1D: sequence lengths N')
    parser.add_argument('--sides-2d', type=int, nargs='+', default=[64, 96, 128, 192, 256],
                        help='2D: sides of the square maps (N = side^2)')
    parser.add_argument('--max-full-tokens', type=int, default=40000,
                        help='skip full attention above this many tokens (O(N^2) time on CPU)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed calls per size; the fastest is reported')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--backward', action='store_true', help='time forward + backward')
    parser.add_argument('--quick', action='store_true',
                        help='2 repeats, full attention capped at 16384 tokens')
    parser.add_argument('--device', help='torch device (default: cuda if available, else cpu)')
    return parser.parse_args()


def _proc_kib(field: str) -> int:
    with open('/proc/self/status') as f:
        return int(re.search(rf'{field}:\s+(\d+)', f.read()).group(1))


def run_once(fn, device) -> float:
    """Peak extra memory (MiB) of one call of ``fn``."""
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    before = _proc_kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    fn()
    return (_proc_kib('VmHWM') - before) / 1024


def measure(module, x, extra, args) -> tuple[float, float]:
    """(fastest seconds, peak MiB) of forward (and backward) of ``module(x, *extra)``."""
    import torch
    device = x.device

    def step():
        if args.backward:
            module(x.requires_grad_(), *extra).sum().backward()
            x.grad = None
            module.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                module(x, *extra)

    mem = run_once(step, device)
    times = []
    for _ in range(args.repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times), mem


def slope(ns: list[int], ys: list[float]) -> float:
    """Least-squares slope of log(y) vs. log(N)."""
    lx, ly = [math.log(n) for n in ns], [math.log(max(y, 1e-9)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return (sum((a - mx) * (b - my) for a, b in zip(lx, ly))
            / sum((a - mx) ** 2 for a in lx))


def bench(name: str, ls, full, shapes: list, args) -> None:
    import torch
    device = torch.device(args.device)
    ls, full = ls.to(device).eval(), full.to(device).eval()
    rows = {'LS': [], 'full': []}
    print(f'\n### {name}  (C={args.dims}, heads={args.heads}, device={device}, '
          f'{"fwd+bwd" if args.backward else "forward"}, best of {args.repeats}, '
          f'{torch.get_num_threads()} threads)\n')
    print('| N | LS time (ms) | LS peak mem (MiB) | full time (ms) | full peak mem (MiB) |')
    print('|---:|---:|---:|---:|---:|')
    for n, extra in shapes:
        torch.manual_seed(0)
        x = torch.randn(1, n, args.dims, device=device)
        t_ls, m_ls = measure(ls, x, extra, args)
        rows['LS'].append((n, t_ls, m_ls))
        full_cell = 'skipped | skipped'
        if n <= args.max_full_tokens:
            t_full, m_full = measure(full, x, extra, args)
            rows['full'].append((n, t_full, m_full))
            full_cell = f'{1e3 * t_full:.1f} | {m_full:.1f}'
        print(f'| {n} | {1e3 * t_ls:.1f} | {m_ls:.1f} | {full_cell} |', flush=True)
    print()
    for kind, data in rows.items():
        if len(data) >= 2:
            ns, ts, ms = zip(*data)
            print(f'{name} {kind}: time slope {slope(ns, ts):.2f}, memory slope '
                  f'{slope(ns, [max(m, 1e-3) for m in ms]):.2f} over N = {ns[0]}..{ns[-1]}')
    faster = [n for (n, t_ls, _), (_, t_full, _) in zip(rows['LS'], rows['full'])
              if t_ls < t_full]
    print(f'{name} crossover: LS faster than full from N = {faster[0]}' if faster
          else f'{name} crossover: LS not faster than full at any measured N')


def main(args):
    import torch

    from mmseg_ext.models.layers import LSAttention1d, LSAttention2d
    args.device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.quick:
        args.repeats = min(args.repeats, 3)
        args.max_full_tokens = min(args.max_full_tokens, 16384)
    torch.set_num_threads(args.threads)
    print(f'torch {torch.__version__}')
    bench('1D', LSAttention1d(args.dims, args.heads, args.window_1d, args.rank_1d),
          full_attention(args.dims, args.heads), [(n, ()) for n in args.sizes_1d], args)
    bench('2D', LSAttention2d(args.dims, args.heads, args.window_2d, args.rank_2d),
          full_attention(args.dims, args.heads),
          [(s * s, ((s, s),)) for s in args.sides_2d], args)


if __name__ == '__main__':
    arguments = parse_args()  # --help answers before the re-execution and the imports
    if sys.platform.startswith('linux') and MMAP_ENV not in os.environ:
        os.environ[MMAP_ENV] = '65536'
        os.execv(sys.executable, [sys.executable, *sys.argv])
    main(arguments)
