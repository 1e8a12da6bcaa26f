"""The fused CPU Long-Short attention windows (``csrc/ls_window_attention.cpp``) as torch ops.

One softmax per query over its window keys and the shared (compressed, global) keys, with the
scores of a 64-query block kept in a small buffer: no window copies, no padding, no masks (Eq. 4
of the paper, exactly as :func:`~.ls_attention_base.windowed_attention` with the summary key).
The 1D and 2D ops return each query's log-sum-exp too; their backward ops recompute the scores
from it and are registered as the ops' autograd formulas, so the kernel serves training as well.
The causal op is forward-only. ``mmseg_ext::ls_layer_norm_`` applies ``LN_S`` in place to the
fresh key/value projection (one pass, no new tensor) when nothing needs its gradient.

The ops (``torch.ops.mmseg_ext.ls_*``) are :func:`torch.library.custom_op` s with fake kernels,
so ``torch.compile`` and ``torch.export`` trace through them. Their C++ side is built on first
use by :func:`torch.utils.cpp_extension.load` (``-O3 -march=native``, a minute or so) and cached
in ``$MMSEG_EXT_KERNEL_CACHE`` (default ``~/.cache/mmseg_ext/kernels``), keyed by the source and
the CPU. Without a compiler the PyTorch path is used (one warning); ``MMSEG_EXT_LS_KERNEL=0``
switches the kernel off.
"""
import glob
import hashlib
import importlib.util
import os
import shutil
import tempfile
import threading
import warnings
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor

SOURCE = os.path.join(os.path.dirname(__file__), 'csrc', 'ls_window_attention.cpp')
FLAGS = ['-O3', '-march=native']
_lock = threading.Lock()
_library: ModuleType | None | bool = None  # None: not tried yet; False: unavailable


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
    """The path of the built extension in ``cache``, built there first if missing (in a
    temporary build folder, then moved: concurrent processes may build the same file)."""
    with open(SOURCE, 'rb') as f:
        digest = hashlib.sha1(f.read() + ' '.join(FLAGS).encode() + _cpu_key().encode()
                              + torch.__version__.encode()).hexdigest()[:16]
    name = f'ls_window_attention_{digest}'
    path = os.path.join(cache, name + '.so')
    if os.path.exists(path):
        return path
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        raise RuntimeError(f'no C++ compiler {compiler!r} on PATH (set CXX)')
    from torch.utils import cpp_extension
    os.makedirs(cache, exist_ok=True)
    build_dir = tempfile.mkdtemp(prefix=f'.{name}-', dir=cache)
    try:
        cpp_extension.load(name, [SOURCE], extra_cflags=FLAGS, build_directory=build_dir)
        os.replace(glob.glob(os.path.join(build_dir, name + '*.so'))[0], path)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return path


def library() -> ModuleType | None:
    """The compiled kernel, built on first call; None when it is switched off or cannot be
    built (then a warning says why)."""
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _load()
    return _library or None


def _load() -> ModuleType | bool:
    if os.environ.get('MMSEG_EXT_LS_KERNEL', '1') == '0':
        return False
    cache = os.environ.get('MMSEG_EXT_KERNEL_CACHE',
                           os.path.join(os.path.expanduser('~'), '.cache', 'mmseg_ext', 'kernels'))
    try:
        path = _build(cache)
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (OSError, RuntimeError, ImportError, IndexError) as err:
        warnings.warn(f'LS attention: the fused CPU kernel is unavailable, using the PyTorch '
                      f'path ({err})', stacklevel=3)
        return False
    return module


def usable(*tensors: Tensor | None, dropout_p: float = 0., differentiable: bool = False) -> bool:
    """Whether the fused kernel may serve a call on these tensors (None: absent): CPU fp32, no
    attention dropout, not inside ``torch.jit`` tracing / scripting or an ONNX export, and --
    unless the op is ``differentiable`` -- nothing needs a gradient."""
    tensors = [t for t in tensors if t is not None]
    if dropout_p or any(t.device.type != 'cpu' or t.dtype != torch.float32 for t in tensors):
        return False
    if (not differentiable and torch.is_grad_enabled()
            and any(t.requires_grad for t in tensors)):
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return False  # ONNX has no such op: the exporter takes the PyTorch path
    return library() is not None


# ------------------------------------------------------------------------------------ ops
@torch.library.custom_op('mmseg_ext::ls_layer_norm_', mutates_args=('x',))
def _layer_norm_(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> None:
    library().layer_norm_(x, weight, bias, eps)


@_layer_norm_.register_fake
def _(x, weight, bias, eps):
    return None


@torch.library.custom_op('mmseg_ext::ls_window_attention_1d', mutates_args=())
def _window_1d(q: Tensor, kv: Tensor, shared: Tensor | None, valid: Tensor | None, heads: int,
               window: int, halo: int, scale: float) -> tuple[Tensor, Tensor]:
    return library().window_attention_1d(q, kv, shared, valid, heads, window, halo, scale)


@torch.library.custom_op('mmseg_ext::ls_window_attention_1d_backward', mutates_args=())
def _window_1d_backward(grad: Tensor, q: Tensor, kv: Tensor, shared: Tensor | None,
                        valid: Tensor | None, out: Tensor, lse: Tensor, heads: int, window: int,
                        halo: int, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    return library().window_attention_1d_backward(grad, q, kv, shared, valid, out, lse, heads,
                                                  window, halo, scale)


@torch.library.custom_op('mmseg_ext::ls_window_attention_2d', mutates_args=())
def _window_2d(q: Tensor, kv: Tensor, shared: Tensor | None, bias: Tensor | None, height: int,
               width: int, heads: int, window: int, halo: int,
               scale: float) -> tuple[Tensor, Tensor]:
    return library().window_attention_2d(q, kv, shared, bias, height, width, heads, window, halo,
                                         scale)


@torch.library.custom_op('mmseg_ext::ls_window_attention_2d_backward', mutates_args=())
def _window_2d_backward(grad: Tensor, q: Tensor, kv: Tensor, shared: Tensor | None,
                        bias: Tensor | None, out: Tensor, lse: Tensor, height: int, width: int,
                        heads: int, window: int, halo: int,
                        scale: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return library().window_attention_2d_backward(grad, q, kv, shared, bias, out, lse, height,
                                                  width, heads, window, halo, scale)


@torch.library.custom_op('mmseg_ext::ls_causal_attention', mutates_args=())
def _causal(q: Tensor, kw_t: Tensor, vw: Tensor, rt: Tensor | None, u: Tensor | None,
            v: Tensor | None, kl_t: Tensor | None, vl: Tensor | None, st: Tensor | None,
            window: int, hidden: int, segment: int, rank: int, mem_segments: int) -> Tensor:
    return library().causal_attention(q, kw_t, vw, rt, u, v, kl_t, vl, st, window, hidden,
                                      segment, rank, mem_segments)


def _fake_forward(q, *args):
    b, n, c = q.shape
    heads = args[-4]
    return q.new_empty(b, n, c), q.new_empty(b, n, heads)


def _fake_backward(grad, q, kv, shared, *args):
    return q.new_empty(q.shape), kv.new_empty(kv.shape), (
        q.new_empty(0) if shared is None else shared.new_empty(shared.shape))


@_window_2d_backward.register_fake
def _(grad, q, kv, shared, bias, *args):
    return (*_fake_backward(grad, q, kv, shared),
            q.new_empty(0) if bias is None else bias.new_empty(bias.shape))


@_causal.register_fake
def _(q, *args):
    b, h, n, d = q.shape
    return q.new_empty(b, n, h, d)


_window_1d.register_fake(_fake_forward)
_window_2d.register_fake(_fake_forward)
_window_1d_backward.register_fake(_fake_backward)


def _save(ctx, inputs, output):
    """Autograd context of the 1D / 2D ops: the tensors (None kept), then the other arguments."""
    tensors = [t for t in inputs if t is None or isinstance(t, Tensor)]
    ctx.save_for_backward(*tensors, *output)
    ctx.rest = inputs[len(tensors):]
    ctx.mark_non_differentiable(output[1])


def _backward_1d(ctx, grad, _grad_lse):
    q, kv, shared, valid, out, lse = ctx.saved_tensors
    dq, dkv, dshared = _window_1d_backward(grad.contiguous(), q, kv, shared, valid, out, lse,
                                           *ctx.rest)
    return dq, dkv, None if shared is None else dshared, None, None, None, None, None


def _backward_2d(ctx, grad, _grad_lse):
    q, kv, shared, bias, out, lse = ctx.saved_tensors
    dq, dkv, dshared, dbias = _window_2d_backward(grad.contiguous(), q, kv, shared, bias, out,
                                                  lse, *ctx.rest)
    return (dq, dkv, None if shared is None else dshared, None if bias is None else dbias,
            *[None] * 6)


_window_1d.register_autograd(_backward_1d, setup_context=_save)
_window_2d.register_autograd(_backward_2d, setup_context=_save)


# ------------------------------------------------------------------------- module helpers
def layer_norm_(x: Tensor, norm: torch.nn.LayerNorm) -> Tensor:
    """``norm(x)`` written into ``x`` (contiguous, normalised over its last dim; ``norm`` with
    its affine parameters, fp32), without the new tensor and the extra pass of
    ``torch.nn.LayerNorm``."""
    _layer_norm_(x, norm.weight, norm.bias, norm.eps)
    return x


def window_attention_1d(q: Tensor, kv: Tensor, shared: Tensor | None, valid: Tensor | None,
                        heads: int, window: int, halo: int, scale: float) -> Tensor:
    """Heads' outputs ``[B, N, C]`` of :class:`LSAttention1d` from ``q [B, N, C]``,
    ``kv [B, N, 2, C]`` (``LN_S``), ``shared [B, m, 2, C]`` (``LN_L``) and ``valid [B, N]``;
    padded queries get zeros. Differentiable in ``q``, ``kv`` and ``shared``."""
    shared = None if shared is None else shared.contiguous()
    valid = None if valid is None else valid.contiguous()
    return _window_1d(q.contiguous(), kv.contiguous(), shared, valid, heads, window, halo,
                      scale)[0]


def window_attention_2d(q: Tensor, kv: Tensor, shared: Tensor | None, bias: Tensor | None,
                        hw_shape: tuple[int, int], heads: int, window: int, halo: int,
                        scale: float) -> Tensor:
    """Heads' outputs ``[B, G + HW, C]`` of the map queries of :class:`LSAttention2d` (the
    ``G`` global rows are zeros) from ``q [B, G + HW, C]``, ``kv [B, G + HW, 2, C]``,
    ``shared [B, m, 2, C]`` and the window bias ``[heads, w^2, (w + 2 halo)^2]``.
    Differentiable in all four."""
    if bias is not None:  # [heads, keys, tile queries rounded up to 16]
        lanes = -(-window * window // 16) * 16
        bias = F.pad(bias.transpose(1, 2), (0, lanes - window * window)).float().contiguous()
    shared = None if shared is None else shared.contiguous()
    return _window_2d(q.contiguous(), kv.contiguous(), shared, bias, *hw_shape, heads, window,
                      halo, scale)[0]


def causal_attention(q: Tensor, k_win: Tensor, v_win: Tensor, rel_win: Tensor | None,
                     u: Tensor | None, v: Tensor | None, k_long: Tensor | None,
                     v_long: Tensor | None, rel_long: Tensor | None, hidden: int, segment: int,
                     rank: int, mem_segments: int) -> Tensor:
    """Heads' outputs ``[B, Np, h, d]`` of :class:`CausalLSAttention1d` from the scaled queries
    ``q [B, h, Np, d]``, the window keys/values ``[B, h, w + Np, d]`` (position ``t`` at row
    ``t + w``, the first ``hidden`` rows masked), the relative-position embeddings ``rel_win
    [h, w, d]`` (row ``m``: distance ``w - 1 - m``) and ``rel_long [h, P, d]`` (row ``x``:
    ``p = P - 1 - x``), the biases ``u``, ``v [h, d]`` and the compressed keys/values
    ``[B, h, P, d]`` (segment ``c`` sees the first ``rank * (mem_segments + c)``).
    Forward only."""
    n, d = q.shape[2], q.shape[3]
    w = k_win.shape[2] - n
    dp = -(-d // 16) * 16

    def rows(t, extra):  # [.., m, d] -> transposed [.., d, m + extra], contiguous
        return None if t is None else F.pad(t.transpose(-1, -2), (0, extra)).contiguous()

    def values(t):  # [.., m, d] -> [.., m, dp]
        return None if t is None else F.pad(t, (0, dp - d)).contiguous()

    return _causal(q.contiguous(), rows(k_win, 32), values(v_win), rows(rel_win, 16),
                   None if u is None else u.contiguous(), None if v is None else v.contiguous(),
                   rows(k_long, 16), values(v_long), rows(rel_long, 16), w, hidden, segment,
                   rank, mem_segments)
