"""Time and peak memory of our Long-Short attention modules against the official ones.

Cases (forward, batch 1, C = 64, 2 heads, fp32, the settings of docs/ls_attention.md):

* ``1d``: :class:`LSAttention1d` w = 64, r = 16 vs official LRA ``AttentionLS``;
* ``causal``: :class:`CausalLSAttention1d` w = 64, segment 16, r = 1, relative positions, a
  64-token memory, no q/k/v/out biases vs official ``ChunkedLSAttention`` with a 64-token cache;
* ``2d``: :class:`LSAttention2d` w = 8, r = 8, relative position bias, one global token vs
  official ViL-LS ``AttentionLS`` (``rpe=True, nglo=1``), on square maps.

Time: the fastest of ``--repeats`` calls (after a warm-up), ours and official alternating, in
this process; on CPU with one thread it is the process's CPU time (robust on a shared machine,
the wall time on an idle one), else the wall time. Ours runs as at inference (``no_grad``: the
fused CPU kernel, see ``mmseg_ext/models/layers/ls_attention_kernel.py``). ``--train`` times a
training step instead: forward and backward of ``out.sum()`` with gradients of the input and
every parameter (ours: the kernel's backward for 1D / 2D, the autograd path for causal).

``--malloc warm`` (default) runs the process with glibc's heap neither mmapping tensors below
32 MiB nor returning freed memory to the OS (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``): every call reuses warm pages, as in a steady training or inference
loop, and the times no longer depend on what the process allocated before (with glibc's adaptive
default the official module's time varies up to 3x between runs: page faults on its large
temporaries). ``--malloc default`` keeps glibc's defaults.

Peak memory: measured in a child process started with ``MALLOC_MMAP_THRESHOLD_=65536`` (glibc
then returns freed tensors to the OS, so the resident-set high-water mark ``VmHWM``, reset
through ``/proc/self/clear_refs``, minus the RSS before the call is the call's peak); on CUDA
``max_memory_allocated``.

The official modules are NOT part of this project. ``--official-root`` points at a clone of
NVIDIA/transformer-ls to measure them side by side; without it the official figures printed are
those measured on the reference machine (``OFFICIAL`` below, docs/ls_attention.md).

    python tools/analysis_tools/benchmark_ls_attention.py --official-root ../transformer-ls
"""
import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import types
import warnings

MMAP_ENV = 'MALLOC_MMAP_THRESHOLD_'
TRIM_ENV = 'MALLOC_TRIM_THRESHOLD_'
#: ``--malloc warm``: no mmap below glibc's 32 MiB maximum, the heap never trimmed.
WARM_MALLOC = {MMAP_ENV: str(32 << 20), TRIM_ENV: str(1 << 40)}
SIZES = {'1d': [1024, 4096, 16384], 'causal': [1024, 4096, 16384], '2d': [64, 128]}
C, HEADS = 64, 2
#: Official modules on the shared 2-core CPU machine (torch 2.13, 1 thread, ``--malloc warm``,
#: measured with --official-root, 2026-12-07, mean of two runs): case -> size -> (ms, peak MiB).
OFFICIAL = {
    '1d': {1024: (2.6, 5.4), 4096: (10.6, 21.9), 16384: (44.5, 87.9)},
    'causal': {1024: (3.2, 6.1), 4096: (23.6, 54.7), 16384: (823.0, 699.9)},
    '2d': {64: (16.7, 41.2), 128: (100.2, 164.7)},
}

#: Likewise for ``--train`` (forward + backward; torch 2.15, one run, 2026-12-07).
OFFICIAL_TRAIN = {
    '1d': {1024: (10.3, 7.8), 4096: (38.8, 31.4), 16384: (152.9, 126.2)},
    'causal': {1024: (12.0, 8.1), 4096: (88.9, 61.9), 16384: (2025.1, 728.0)},
    '2d': {64: (76.6, 50.7), 128: (338.3, 201.6)},
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--official-root', help='a clone of NVIDIA/transformer-ls')
    parser.add_argument('--cases', nargs='+', default=list(SIZES), choices=list(SIZES),
                        help='modules to compare (sizes: %s)' % SIZES)
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed calls per module and size; the fastest is reported')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads')
    parser.add_argument('--device', default=None, help='default: cuda if available, else cpu')
    parser.add_argument('--malloc', choices=['warm', 'default'], default='warm',
                        help='glibc heap settings for the timing (see the module docstring)')
    parser.add_argument('--train', action='store_true',
                        help='time forward + backward (a training step) instead of the forward')
    parser.add_argument('--memory-child', action='store_true', help=argparse.SUPPRESS)
    return parser.parse_args()


def load_official(root: str) -> dict:
    """The official attention classes from a clone, with stand-ins for the two imports they do
    not need (fairseq's LayerNorm, timm's trunc_normal_) when those packages are missing."""
    import torch
    layer_norm = dict(LayerNorm=lambda dims, eps=1e-5, elementwise_affine=True, export=False:
                      torch.nn.LayerNorm(dims, eps, elementwise_affine))
    stand_ins = {'fairseq': {'fairseq.modules.layer_norm': layer_norm},
                 'timm': {'timm.models.layers': dict(trunc_normal_=torch.nn.init.trunc_normal_)}}
    added = []
    for package, modules in stand_ins.items():
        if package in sys.modules or importlib.util.find_spec(package) is not None:
            continue
        for name, attrs in modules.items():
            parts = name.split('.')
            for i in range(1, len(parts) + 1):
                if '.'.join(parts[:i]) not in sys.modules:
                    sys.modules['.'.join(parts[:i])] = types.ModuleType('.'.join(parts[:i]))
                    added.append('.'.join(parts[:i]))
            sys.modules[name].__dict__.update(attrs)
    classes = {}
    warnings.filterwarnings('ignore', message='torch.meshgrid')  # the official 2D module
    try:
        for case, path, cls in (
                ('1d', 'lra/attention_transformer_ls.py', 'AttentionLS'),
                ('causal', 'autoregressive/model_lib/layer.py', 'ChunkedLSAttention'),
                ('2d', 'imagenet/models/layers/transformer_ls.py', 'AttentionLS')):
            spec = importlib.util.spec_from_file_location(f'official_ls_{case}',
                                                          os.path.join(root, path))
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            classes[case] = getattr(module, cls)
    finally:  # the stand-ins only serve the official files' imports
        for name in added:
            del sys.modules[name]
    return classes


def sinusoid(positions, dims):
    import torch
    inv_freq = 1 / 10000 ** (torch.arange(0., dims, 2.) / dims)
    angles = positions[:, None] * inv_freq
    return torch.cat([angles.sin(), angles.cos()], -1)[None]


def build(case: str, size: int, device, official=None, train=False):
    """A ``() -> None`` closure running our module (or the official one) on random input; with
    ``train`` forward and backward."""
    import torch

    from mmseg_ext.models.layers import CausalLSAttention1d, LSAttention1d, LSAttention2d
    torch.manual_seed(0)
    if case == '1d':
        x = torch.randn(1, size, C, device=device)
        if official is None:
            m = LSAttention1d(C, HEADS, 64, 16)
            return _run(m, device, train, x)
        cfg = types.SimpleNamespace(
            pooling_mode='MEAN', cls_token=False, num_head=HEADS, head_dim=C // HEADS,
            num_landmarks=16, max_seq_len=size, transformer_dim=C, attention_dropout=0.,
            window_size=64, fp32_attn=False, conv_kernel_size=-1)
        return _run(official['1d'](cfg), device, train, x, torch.ones(1, size, device=device))
    if case == 'causal':
        x, memory = torch.randn(1, size, C, device=device), torch.randn(1, 64, C, device=device)
        if official is None:
            m = CausalLSAttention1d(C, HEADS, 64, 16, 1, qkv_bias=False, proj_bias=False,
                                    rel_pos=True)
            return _run(m, device, train, x, memory)
        chunks = (size + 64) // 16
        mask = torch.triu(torch.ones(size // 16, chunks, dtype=torch.bool, device=device),
                          diagonal=64 // 16)[None, None, :, None, :, None].view(1, 1, -1, 1, chunks)
        return _run(official['causal'](C, HEADS, 16, 1, 64, 0.), device, train, x, memory,
                    sinusoid(torch.arange(chunks - 1., -1., -1.), C).to(device),
                    sinusoid(torch.arange(63., -1., -1.), C).to(device), mask)
    x = torch.randn(1, 1 + size * size, C, device=device)
    if official is None:
        m = LSAttention2d(C, HEADS, 8, 8, rel_pos_bias=True, num_global_tokens=1)
        return _run(m, device, train, x, (size, size))
    m = official['2d'](C, HEADS, qkv_bias=True, rpe=True, nglo=1, dp_rank=8, w=8)
    return _run(m, device, train, x, size, size)


def _run(module, device, train, x, *inputs):
    import torch
    module = module.to(device).train(train)
    x.requires_grad_(train)

    def call():
        if train:
            x.grad = None
            module.zero_grad(set_to_none=True)
            module(x, *inputs).sum().backward()
        else:
            with torch.no_grad():
                module(x, *inputs)
        if device.type == 'cuda':
            torch.cuda.synchronize()
    return call


def peak_mib(fn, device) -> float:
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        return (torch.cuda.max_memory_allocated() - before) / 2**20

    def kib(field):
        with open('/proc/self/status') as f:
            return int(re.search(rf'{field}:\s+(\d+)', f.read()).group(1))
    before = kib('VmRSS')
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    fn()
    return (kib('VmHWM') - before) / 1024


def fastest_ms(fns: dict, repeats: int, clock) -> dict:
    """Best of ``repeats`` calls of each closure, calls alternating between closures."""
    times = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for key, fn in fns.items():
            start = clock()
            fn()
            times[key].append(clock() - start)
    return {k: 1e3 * min(v) for k, v in times.items()}


def peaks(cases, device, official, train=False):
    """((case, size, who), peak MiB) of each module's call (forward + backward with train)."""
    for case in cases:
        for size in SIZES[case]:
            for who in ['ours'] + (['official'] if official else []):
                fn = build(case, size, device, official if who == 'official' else None, train)
                fn()
                yield (case, size, who), peak_mib(fn, device)


def memory_in_child(args) -> dict:
    """(case, size, who) -> peak MiB on CPU, measured in a child process with the mmap
    threshold set."""
    cmd = [sys.executable, os.path.abspath(__file__), '--memory-child', '--cases', *args.cases,
           '--threads', str(args.threads)] + ['--train'] * args.train
    if args.official_root:
        cmd += ['--official-root', args.official_root]
    env = {k: v for k, v in os.environ.items() if k != TRIM_ENV}
    out = subprocess.run(cmd, env=dict(env, **{MMAP_ENV: '65536'}), check=True,
                         capture_output=True, text=True).stdout
    return {tuple(r[:3]): r[3] for r in map(json.loads, out.splitlines())}


def main():
    args = parse_args()
    if (args.malloc == 'warm' and not args.memory_child
            and any(os.environ.get(k) != v for k, v in WARM_MALLOC.items())):
        # glibc reads these at start-up: run again with them set
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **WARM_MALLOC))
    import torch
    torch.set_num_threads(args.threads)
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    import mmseg_ext  # noqa: F401  (before the official files' stand-in imports)
    official = load_official(args.official_root) if args.official_root else None
    if args.memory_child:
        for key, mib in peaks(args.cases, device, official, args.train):
            print(json.dumps([*key, mib]), flush=True)
        return
    # CUDA's max_memory_allocated needs no child process
    memory = dict(peaks(args.cases, device, official, args.train)) if device.type == 'cuda' else \
        memory_in_child(args)
    one_cpu = device.type == 'cpu' and torch.get_num_threads() == 1
    clock = time.process_time if one_cpu else time.perf_counter
    source = 'measured now' if official else 'reference machine, warm malloc (see --official-root)'
    print(f'torch {torch.__version__}, {device}, {torch.get_num_threads()} thread(s), '
          f'{"CPU" if one_cpu else "wall"} time, {args.malloc} malloc, '
          f'{"forward + backward" if args.train else "forward"}; official: {source}')
    for case in args.cases:
        print(f'\n### {case}\n\n| size | ours (ms) | official (ms) | time ratio | ours peak (MiB) '
              '| official peak (MiB) |\n|---:|---:|---:|---:|---:|---:|')
        for size in SIZES[case]:
            fns = {'ours': build(case, size, device, train=args.train)}
            if official:
                fns['official'] = build(case, size, device, official, args.train)
            times = fastest_ms(fns, args.repeats, clock)
            ref_time, ref_mem = (OFFICIAL_TRAIN if args.train else OFFICIAL)[case][size]
            t_off = times.get('official', ref_time)
            m_ours = memory.get((case, size, 'ours'), float('nan'))
            m_off = memory.get((case, size, 'official'), ref_mem if not official else
                               float('nan'))
            label = f'{size}x{size}' if case == '2d' else str(size)
            print(f'| {label} | {times["ours"]:.1f} | {t_off:.1f} | {times["ours"] / t_off:.2f} '
                  f'| {m_ours:.1f} | {m_off:.1f} |', flush=True)


if __name__ == '__main__':
    main()
