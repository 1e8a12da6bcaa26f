"""The fused CPU forward of the Long-Short attention windows (``csrc/ls_window_attention.cpp``).

One softmax per query over its window keys and the shared (compressed, global) keys, with the
scores of a 64-query block kept in a small buffer: no window copies, no padding, no masks (Eq. 4
of the paper, exactly as :func:`~.ls_attention_base.windowed_attention` with the summary key).
It serves :class:`LSAttention1d` and :class:`LSAttention2d` when nothing needs a gradient: CPU
fp32, eval (no attention dropout), outside tracing / export / ``torch.compile``. Everything else
takes the autograd path, which stays the reference. The same conditions let :func:`layer_norm_`
apply ``LN_S`` in place to the fresh key/value projection (one pass, no new tensor).

The kernel is compiled on first use with the system C++ compiler (``g++ -O3 -march=native``, a
second or two) into ``$MMSEG_EXT_KERNEL_CACHE`` (default ``~/.cache/mmseg_ext/kernels``), keyed
by the source and the CPU. Without a compiler the PyTorch path is used (one warning).
``MMSEG_EXT_LS_KERNEL=0`` switches the kernel off.
"""
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

SOURCE = os.path.join(os.path.dirname(__file__), 'csrc', 'ls_window_attention.cpp')
FLAGS = ['-O3', '-march=native', '-fPIC', '-shared', '-std=c++17']
_lock = threading.Lock()
_library: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable
_pools: dict[int, ThreadPoolExecutor] = {}

_P, _I, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
SIGNATURES = {
    'ls_window_attention_1d': [_P] * 5 + [_I] * 7 + [_F, _I, _I],
    'ls_window_attention_2d': [_P] * 5 + [_I] * 9 + [_F, _I, _I],
    'ls_causal_attention': [_P, _I, _I],
    'ls_layer_norm': [_P] * 3 + [_I, _F, _I, _I],
}


class _CausalArgs(ctypes.Structure):
    """``CausalArgs`` of the C++ source."""
    _fields_ = ([(name, _P) for name in ('q', 'kw_t', 'vw', 'rt', 'u', 'v', 'kl_t', 'vl', 'st',
                                         'out')]
                + [(name, _I) for name in ('B', 'heads', 'Np', 'd', 'dp', 'w', 'hidden', 'seg',
                                           'r', 'mem_segs', 'P', 'ldw', 'ldr', 'ldl')])


def _cpu_key() -> str:
    """The CPU model and flags: a library built with -march=native runs on this CPU only."""
    try:
        with open('/proc/cpuinfo') as f:
            lines = [ln for ln in f if ln.startswith(('model name', 'flags'))]
        return ''.join(sorted(set(lines)))
    except OSError:
        import platform
        return platform.processor() + platform.machine()


def _build(cache: str) -> str:
    with open(SOURCE, 'rb') as f:
        digest = hashlib.sha1(f.read() + ' '.join(FLAGS).encode() + _cpu_key().encode())
    path = os.path.join(cache, f'ls_window_attention_{digest.hexdigest()[:16]}.so')
    if os.path.exists(path):
        return path
    compiler = os.environ.get('CXX', 'g++')
    if shutil.which(compiler) is None:
        raise RuntimeError(f'no C++ compiler {compiler!r} on PATH (set CXX)')
    os.makedirs(cache, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=cache)
    os.close(fd)
    try:
        result = subprocess.run([compiler, *FLAGS, SOURCE, '-o', tmp], capture_output=True,
                                text=True)
        if result.returncode:
            raise RuntimeError(f'{compiler} failed on {SOURCE}:\n{result.stderr[-2000:]}')
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)  # atomic: concurrent processes may build the same file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def library() -> ctypes.CDLL | None:
    """The compiled kernel, built on first call; None when it is switched off or cannot be
    built (then a warning says why)."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _load()
    return _library or None


def _load() -> ctypes.CDLL | bool:
    if os.environ.get('MMSEG_EXT_LS_KERNEL', '1') == '0':
        return False
    cache = os.environ.get('MMSEG_EXT_KERNEL_CACHE',
                           os.path.join(os.path.expanduser('~'), '.cache', 'mmseg_ext', 'kernels'))
    try:
        lib = ctypes.CDLL(_build(cache))
    except (OSError, RuntimeError) as err:
        warnings.warn(f'LS attention: the fused CPU kernel is unavailable, using the PyTorch '
                      f'path ({err})', stacklevel=3)
        return False
    for name, args in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, None
    return lib


def usable(*tensors: torch.Tensor | None, dropout_p: float = 0.) -> bool:
    """Whether the fused kernel may serve a call on these tensors (None: absent; see the module
    docstring)."""
    tensors = [t for t in tensors if t is not None]
    if dropout_p or any(t.device.type != 'cpu' or t.dtype != torch.float32 for t in tensors):
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return False
    return library() is not None


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _run(fn, args: list, items: int):
    """``fn(*args, begin, end)`` over ``items`` work items, split across torch's intra-op
    threads (ctypes releases the GIL)."""
    threads = min(torch.get_num_threads(), items)
    if threads <= 1:
        fn(*args, 0, items)
        return
    pool = _pools.get(threads)
    if pool is None:
        pool = _pools[threads] = ThreadPoolExecutor(threads, thread_name_prefix='ls_kernel')
    bounds = [items * i // threads for i in range(threads + 1)]
    for job in [pool.submit(fn, *args, lo, hi) for lo, hi in zip(bounds, bounds[1:])]:
        job.result()


def layer_norm_(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    """``norm(x)`` written into ``x`` (contiguous, normalised over its last dim; ``norm`` with
    its affine parameters, fp32), without the new tensor and the extra pass of
    ``torch.nn.LayerNorm``."""
    c = x.shape[-1]
    _run(library().ls_layer_norm, [_ptr(x), _ptr(norm.weight), _ptr(norm.bias), c, norm.eps],
         x.numel() // c)
    return x


def window_attention_1d(q: torch.Tensor, kv: torch.Tensor, shared: torch.Tensor | None,
                        valid: torch.Tensor | None, heads: int, window: int, halo: int,
                        scale: float) -> torch.Tensor:
    """Heads' outputs ``[B, N, C]`` of :class:`LSAttention1d` from ``q [B, N, C]``,
    ``kv [B, N, 2, C]`` (``LN_S``), ``shared [B, m, 2, C]`` (``LN_L``) and ``valid [B, N]``;
    padded queries get zeros."""
    b, n, c = q.shape
    q, kv = q.contiguous(), kv.contiguous()
    shared = None if shared is None else shared.contiguous()
    valid = None if valid is None else valid.to(torch.uint8).contiguous()
    out = q.new_empty(b, n, c)
    m = 0 if shared is None else shared.shape[1]
    items = b * heads * -(-n // window) * -(-window // 64)
    _run(library().ls_window_attention_1d,
         [_ptr(q), _ptr(kv), _ptr(shared), _ptr(valid), _ptr(out), b, n, c, heads, m, window,
          halo, scale], items)
    return out


def window_attention_2d(q: torch.Tensor, kv: torch.Tensor, shared: torch.Tensor | None,
                        bias: torch.Tensor | None, hw_shape: tuple[int, int], heads: int,
                        window: int, halo: int, scale: float) -> torch.Tensor:
    """Heads' outputs ``[B, G + HW, C]`` of the map queries of :class:`LSAttention2d` (the
    ``G`` global rows are left unset) from ``q [B, G + HW, C]``, ``kv [B, G + HW, 2, C]``,
    ``shared [B, m, 2, C]`` and the window bias ``[heads, w^2, (w + 2 halo)^2]``."""
    b, n, c = q.shape
    h, w = hw_shape
    q, kv = q.contiguous(), kv.contiguous()
    shared = None if shared is None else shared.contiguous()
    if bias is not None:  # [heads, keys, tile queries rounded up to 16]
        lanes = -(-window * window // 16) * 16
        bias = F.pad(bias.transpose(1, 2), (0, lanes - window * window))
        bias = bias.float().contiguous()
    out = q.new_empty(b, n, c)
    m = 0 if shared is None else shared.shape[1]
    items = b * heads * -(-h // window) * -(-w // window) * -(-window * window // 64)
    _run(library().ls_window_attention_2d,
         [_ptr(q), _ptr(kv), _ptr(shared), _ptr(bias), _ptr(out), b, n - h * w, h, w, c, heads,
          m, window, halo, scale], items)
    return out


def causal_attention(q: torch.Tensor, k_win: torch.Tensor, v_win: torch.Tensor,
                     rel_win: torch.Tensor | None, u: torch.Tensor | None, v: torch.Tensor | None,
                     k_long: torch.Tensor | None, v_long: torch.Tensor | None,
                     rel_long: torch.Tensor | None, hidden: int, segment: int, rank: int,
                     mem_segments: int) -> torch.Tensor:
    """Heads' outputs ``[B, Np, h, d]`` of :class:`CausalLSAttention1d` from the scaled queries
    ``q [B, h, Np, d]``, the window keys/values ``[B, h, w + Np, d]`` (position ``t`` at row
    ``t + w``, the first ``hidden`` rows masked), the relative-position embeddings ``rel_win
    [h, w, d]`` (row ``m``: distance ``w - 1 - m``) and ``rel_long [h, P, d]`` (row ``x``:
    ``p = P - 1 - x``), the biases ``u``, ``v [h, d]`` and the compressed keys/values
    ``[B, h, P, d]`` (segment ``c`` sees the first ``rank * (mem_segments + c)``)."""
    b, h, n, d = q.shape
    w = k_win.shape[2] - n
    dp = -(-d // 16) * 16

    def rows(t, extra):  # [.., m, d] -> transposed [.., d, m + extra], contiguous
        return F.pad(t.transpose(-1, -2), (0, extra)).contiguous()

    def values(t):  # [.., m, d] -> [.., m, dp]
        return F.pad(t, (0, dp - d)).contiguous()

    keep = dict(q=q.contiguous(), kw_t=rows(k_win, 32), vw=values(v_win))
    if rel_win is not None:
        keep.update(rt=rows(rel_win, 16), u=u.contiguous(), v=v.contiguous(),
                    st=None if rel_long is None else rows(rel_long, 16))
    n_long = 0
    if k_long is not None:
        n_long = k_long.shape[2]
        keep.update(kl_t=rows(k_long, 16), vl=values(v_long))
    out = q.new_empty(b, n, h, d)
    args = _CausalArgs(**{k: _ptr(t) for k, t in keep.items()}, out=out.data_ptr(), B=b,
                       heads=h, Np=n, d=d, dp=dp, w=w, hidden=hidden, seg=segment, r=rank,
                       mem_segs=mem_segments, P=n_long, ldw=w + n + 32, ldr=w + 16,
                       ldl=n_long + 16)
    _run(library().ls_causal_attention, [ctypes.byref(args)], b * h * -(-n // 64))
    return out
