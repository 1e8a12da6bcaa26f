"""Official NVIDIA/transformer-ls attention weights -> :class:`LSAttention1d`,
:class:`CausalLSAttention1d`, :class:`LSAttention2d`.

Key mapping per module (official -> ours), found by prefix anywhere in a state dict::

    1D, lra/attention_transformer_ls.py AttentionLS
        W_q, W_k, W_v (.weight/.bias)        qkv (concatenated q, k, v)
        W_o                                  proj
        dual_ln_l (all keys/values)          dual_ln.short
        dual_ln_s (compressed ones)          dual_ln.long
        dconv_fc                             dynamic_proj.proj
    causal, autoregressive/model_lib/layer.py ChunkedLSAttention
        proj_query, proj_key, proj_val       qkv (biases only with --use-bias)
        proj_out                             proj
        dual_ln_win / dual_ln_dproj          dual_ln.short / dual_ln.long
        dconv_1                              dynamic_proj.proj
        r_net / r_net_chunk                  rel_pos_proj / rel_pos_proj_long
        r_w_bias [1, h, 1, 1, d]             rel_content_bias [h, d]
        r_r_bias [1, h, 1, d]                rel_pos_bias [h, d]
    2D, imagenet/models/layers/transformer_ls.py AttentionLS
        qkv, proj                            qkv, proj
        dual_ln_full / dual_ln_dp            dual_ln.short / dual_ln.long
        to_dynamic_projection                dynamic_proj.proj
        local_relative_position_bias_table   rel_pos_table (converted, see below)
        relative_position_index              dropped (a buffer rebuilt by the module)

The official 2D table is indexed by ``(q_y - k_y + p + w - 1) * (2p + w) + (q_x - k_x + p + w - 1)``
(``p = w // 2``): its row stride ``2p + w`` is smaller than the ``2(w + p) - 1`` column offsets,
so some offsets share a row (253 rows for 361 offsets at ``w = 7``). Ours has one row per offset;
each of our rows takes the official row its offset reads, so the converted module computes the
same biases. Keys of other modules pass through unchanged.
"""
import math

import torch

_RENAMES = {
    '1d': {'W_o.': 'proj.', 'dual_ln_l.': 'dual_ln.short.', 'dual_ln_s.': 'dual_ln.long.',
           'dconv_fc.': 'dynamic_proj.proj.'},
    'causal': {'proj_out.': 'proj.', 'dual_ln_win.': 'dual_ln.short.',
               'dual_ln_dproj.': 'dual_ln.long.', 'dconv_1.': 'dynamic_proj.proj.',
               'r_net.': 'rel_pos_proj.', 'r_net_chunk.': 'rel_pos_proj_long.'},
    '2d': {'qkv.': 'qkv.', 'proj.': 'proj.', 'dual_ln_full.': 'dual_ln.short.',
           'dual_ln_dp.': 'dual_ln.long.', 'to_dynamic_projection.': 'dynamic_proj.proj.'},
}
_QKV = {'1d': ('W_q.', 'W_k.', 'W_v.'), 'causal': ('proj_query.', 'proj_key.', 'proj_val.')}
_MARKERS = {'dual_ln_s.weight': '1d', 'dual_ln_win.weight': 'causal', 'dual_ln_full.weight': '2d'}


def official_rel_pos_rows(window_size: int) -> int:
    """Rows of the official 2D table: ``2 (w + p - 1) (2p + w + 1) + 1``, ``p = w // 2``."""
    w, p = window_size, window_size // 2
    return 2 * (w + p - 1) * (2 * p + w + 1) + 1


def convert_rel_pos_table(table: torch.Tensor, window_size: int | None = None) -> torch.Tensor:
    """Official ``local_relative_position_bias_table [rows, h]`` -> ours ``[span^2, h]`` (exact).
    ``window_size`` is found from the number of rows when not given."""
    if window_size is None:
        matches = [w for w in range(2, 257) if official_rel_pos_rows(w) == table.shape[0]]
        if not matches:
            raise ValueError(f'a relative position table of {table.shape[0]} rows matches no '
                             'window size of the official 2D AttentionLS')
        window_size = matches[0]
    w, p = window_size, window_size // 2
    if w < 2:
        raise ValueError('the official relative position bias needs window size >= 2')
    if table.shape[0] != official_rel_pos_rows(w):
        raise ValueError(f'relative position table has {table.shape[0]} rows; the official '
                         f'module with w={w} has {official_rel_pos_rows(w)}')
    offsets = torch.arange(-(w + p - 1), w + p)  # key - query, ours row-major in (dy, dx)
    dy, dx = torch.meshgrid(offsets, offsets, indexing='ij')
    rows = (p + w - 1 - dy) * (2 * p + w) + (p + w - 1 - dx)
    return table[rows.flatten()]


def _convert_module(sd: dict, prefix: str, kind: str) -> dict:
    keys = [k for k in sd if k.startswith(prefix)]
    out = {}
    if kind in _QKV:
        names = _QKV[kind]
        for param in ('weight', 'bias'):
            parts = [sd.get(f'{prefix}{n}{param}') for n in names]
            if all(t is not None for t in parts):
                out[f'{prefix}qkv.{param}'] = torch.cat(parts)
            elif any(t is not None for t in parts):
                raise KeyError(f'{prefix}: only some of {[n + param for n in names]} present')
    for key in keys:
        rest = key[len(prefix):]
        if kind in _QKV and rest.startswith(_QKV[kind]):
            continue
        if kind == '1d' and rest.startswith('conv.'):
            raise KeyError(f'{key}: the convolution branch (conv_kernel_size > 0) of the official '
                           'LRA module has no counterpart; the LS runs use conv_kernel_size=-1')
        if kind == 'causal' and rest in ('r_w_bias', 'r_r_bias'):
            name = 'rel_content_bias' if rest == 'r_w_bias' else 'rel_pos_bias'
            heads, dims = sd[key].shape[1], sd[key].shape[-1]
            out[prefix + name] = sd[key].reshape(heads, dims)
            continue
        if kind == '2d' and rest == 'relative_position_index':
            continue
        if kind == '2d' and rest == 'local_relative_position_bias_table':
            index = sd.get(prefix + 'relative_position_index')
            window = None if index is None else math.isqrt(index.shape[0])
            out[prefix + 'rel_pos_table'] = convert_rel_pos_table(sd[key], window)
            continue
        target = next((new + rest[len(old):] for old, new in _RENAMES[kind].items()
                       if rest.startswith(old)), None)
        if target is None:
            raise KeyError(f'{key}: unknown parameter of the official {kind} AttentionLS')
        out[prefix + target] = sd[key]
    return out


def convert_official_ls_state_dict(state_dict: dict) -> dict:
    """Rename the parameters of every official LS attention module in ``state_dict`` (1D
    ``AttentionLS``, causal ``ChunkedLSAttention``, 2D ``AttentionLS``, at any prefix) to
    ours; other keys are kept. Returns a new dict."""
    modules = {key[:-len(marker)]: kind for key in state_dict
               for marker, kind in _MARKERS.items() if key.endswith(marker)
               and (key == marker or key[-len(marker) - 1] == '.')}
    out = {k: v for k, v in state_dict.items()
           if not any(k.startswith(prefix) for prefix in modules)}
    for prefix, kind in modules.items():
        out.update(_convert_module(state_dict, prefix, kind))
    return out
