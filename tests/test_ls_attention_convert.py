"""convert_official_ls_state_dict: official NVIDIA/transformer-ls key layouts (written out by
hand below from the official modules' __init__) round-trip into our modules."""
import pytest
import torch

from mmseg_ext.models.layers import (
    CausalLSAttention1d,
    LSAttention1d,
    LSAttention2d,
    convert_official_ls_state_dict,
)

C, H = 16, 4
D = C // H


def randomised(module):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module.state_dict()


def official_1d(ours):
    """lra/attention_transformer_ls.py AttentionLS: W_q/W_k/W_v/W_o, dual_ln_s (compressed
    K/V), dual_ln_l (all K/V), dconv_fc."""
    wq, wk, wv = ours['qkv.weight'].split(C)
    bq, bk, bv = ours['qkv.bias'].split(C)
    return {'W_q.weight': wq, 'W_q.bias': bq, 'W_k.weight': wk, 'W_k.bias': bk,
            'W_v.weight': wv, 'W_v.bias': bv, 'W_o.weight': ours['proj.weight'],
            'W_o.bias': ours['proj.bias'],
            'dual_ln_s.weight': ours['dual_ln.long.weight'],
            'dual_ln_s.bias': ours['dual_ln.long.bias'],
            'dual_ln_l.weight': ours['dual_ln.short.weight'],
            'dual_ln_l.bias': ours['dual_ln.short.bias'],
            'dconv_fc.weight': ours['dynamic_proj.proj.weight'],
            'dconv_fc.bias': ours['dynamic_proj.proj.bias']}


def official_causal(ours):
    """autoregressive/model_lib/layer.py ChunkedLSAttention (use_bias=False)."""
    wq, wk, wv = ours['qkv.weight'].split(C)
    return {'proj_query.weight': wq, 'proj_key.weight': wk, 'proj_val.weight': wv,
            'proj_out.weight': ours['proj.weight'],
            'dconv_1.weight': ours['dynamic_proj.proj.weight'],
            'dconv_1.bias': ours['dynamic_proj.proj.bias'],
            'r_net.weight': ours['rel_pos_proj.weight'],
            'r_net_chunk.weight': ours['rel_pos_proj_long.weight'],
            'r_net_chunk.bias': ours['rel_pos_proj_long.bias'],
            'r_r_bias': ours['rel_pos_bias'].view(1, H, 1, D),
            'r_w_bias': ours['rel_content_bias'].view(1, H, 1, 1, D),
            'dual_ln_dproj.weight': ours['dual_ln.long.weight'],
            'dual_ln_dproj.bias': ours['dual_ln.long.bias'],
            'dual_ln_win.weight': ours['dual_ln.short.weight'],
            'dual_ln_win.bias': ours['dual_ln.short.bias']}


def official_2d(ours):
    """imagenet/models/layers/transformer_ls.py AttentionLS without rpe."""
    return {'qkv.weight': ours['qkv.weight'], 'qkv.bias': ours['qkv.bias'],
            'proj.weight': ours['proj.weight'], 'proj.bias': ours['proj.bias'],
            'to_dynamic_projection.weight': ours['dynamic_proj.proj.weight'],
            'to_dynamic_projection.bias': ours['dynamic_proj.proj.bias'],
            'dual_ln_dp.weight': ours['dual_ln.long.weight'],
            'dual_ln_dp.bias': ours['dual_ln.long.bias'],
            'dual_ln_full.weight': ours['dual_ln.short.weight'],
            'dual_ln_full.bias': ours['dual_ln.short.bias']}


CASES = [
    (lambda: LSAttention1d(C, H, 4, 3), official_1d),
    (lambda: CausalLSAttention1d(C, H, 4, 4, 2, qkv_bias=False, proj_bias=False, rel_pos=True),
     official_causal),
    (lambda: LSAttention2d(C, H, 4, 3, num_global_tokens=1), official_2d),
]


@pytest.mark.parametrize('build,official', CASES, ids=['1d', 'causal', '2d'])
def test_round_trip_at_any_prefix(build, official):
    ours = randomised(build())
    model = {f'layers.3.attn.{k}': v for k, v in official(ours).items()}
    model['layers.3.norm1.weight'] = torch.ones(C)  # other keys pass through
    converted = convert_official_ls_state_dict(model)
    assert converted.pop('layers.3.norm1.weight') is model['layers.3.norm1.weight']
    assert converted.keys() == {f'layers.3.attn.{k}' for k in ours}
    for key, value in ours.items():
        torch.testing.assert_close(converted[f'layers.3.attn.{key}'], value, rtol=0, atol=0)
    build().load_state_dict(convert_official_ls_state_dict(official(ours)))


def official_rel_pos_index(w):
    """As the official module builds it: key coordinates -p .. p + w - 1 around a w x w tile,
    ``q - k`` shifted by ``p + w - 1``, rows scaled by ``2p + w`` (p = w // 2)."""
    p = w // 2
    k = torch.stack(torch.meshgrid(torch.arange(-p, p + w), torch.arange(-p, p + w),
                                   indexing='ij')).flatten(1).T[None]  # [1, K^2, 2]
    q = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w),
                                   indexing='ij')).flatten(1).T[:, None]  # [w^2, 1, 2]
    rel = q - k + p + w - 1
    return rel[..., 0] * (2 * p + w) + rel[..., 1]


@pytest.mark.parametrize('w', [2, 7, 8])
def test_official_rel_pos_table_converts_exactly(w):
    p = w // 2
    rows = 2 * (w + p - 1) * (2 * p + w + 1) + 1
    table = torch.randn(rows, H)
    index = official_rel_pos_index(w)
    assert index.max() == rows - 1
    if w == 7:  # the official table aliases offsets: 253 rows for 19 x 19 offsets
        assert rows == 253 and (2 * (w + p) - 1) ** 2 == 361
    ours = randomised(LSAttention2d(C, H, w, 2, rel_pos_bias=True))
    official = dict(official_2d(ours), local_relative_position_bias_table=table,
                    relative_position_index=index)
    m = LSAttention2d(C, H, w, 2, rel_pos_bias=True)
    m.load_state_dict(convert_official_ls_state_dict(official))
    assert m.rel_pos_table.shape[0] == (2 * (w + p) - 1) ** 2
    torch.testing.assert_close(m.rel_pos_table[m.rel_pos_index], table[index], rtol=0, atol=0)
    del official['relative_position_index']  # the window size is found from the table rows
    assert torch.equal(convert_official_ls_state_dict(official)['rel_pos_table'],
                       m.rel_pos_table.detach())


def test_bad_official_weights_raise():
    ours = randomised(LSAttention1d(C, H, 4, 3))
    with pytest.raises(KeyError, match='conv.weight: the convolution branch'):
        convert_official_ls_state_dict(dict(official_1d(ours), **{'conv.weight': torch.ones(1)}))
    partial = official_1d(ours)
    del partial['W_k.bias']
    with pytest.raises(KeyError, match='only some of'):
        convert_official_ls_state_dict(partial)
    two_d = dict(official_2d(randomised(LSAttention2d(C, H, 4, 3))),
                 local_relative_position_bias_table=torch.zeros(100, H))
    with pytest.raises(ValueError, match='100 rows matches no window size'):
        convert_official_ls_state_dict(two_d)
