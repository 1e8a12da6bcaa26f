"""Panoptic SegFormer components on tiny shapes: attention-to-mask, mask decoder, query filter,
mask-wise merging."""
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmcv.ops')
from mmdet.evaluation.functional import INSTANCE_OFFSET  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import mmseg_ext  # noqa: E402,F401
from mmseg_ext.models.panoptic import (  # noqa: E402
    AttentionToMask,
    MaskWiseMerging,
    PanSegMaskDecoder,
    PanSegQueryFilter,
)

HW = [(4, 6), (2, 3), (1, 2)]
LENGTH = sum(h * w for h, w in HW)


def test_attention_to_mask_matches_manual_fusion():
    torch.manual_seed(0)
    attn = AttentionToMask(embed_dims=16, num_heads=2, num_levels=3).eval()
    attn.fuse[0].weight.data.abs_()  # keep the final ReLU output non-trivial
    torch.nn.init.constant_(attn.fuse[0].bias, 0.1)
    query, memory = torch.randn(2, 5, 16), torch.randn(2, LENGTH, 16)
    out, mask = attn(query, memory, HW)
    assert out.shape == (2, 5, 16) and mask.shape == (2, 5, 4, 6)
    assert (mask >= 0).all() and (mask > 0).float().mean() > 0.2
    # manual: per-head logits -> per-level Linear+ReLU -> upsample to level 0 -> fuse
    q = attn.q(query).reshape(2, 5, 2, 8).transpose(1, 2)
    k = attn.k(memory).reshape(2, LENGTH, 2, 8).transpose(1, 2)
    logits = q @ k.transpose(-2, -1) / 8 ** 0.5  # (B, heads, N, L)
    maps, start = [], 0
    for fc, (h, w) in zip(attn.level_fcs, HW):
        part = logits[..., start:start + h * w]
        start += h * w
        part = torch.relu(torch.einsum('bhnl,gh->bgnl', part, fc[0].weight)
                          + fc[0].bias[None, :, None, None])
        part = part.reshape(2, 2, 5, h, w).permute(0, 2, 1, 3, 4).reshape(10, 2, h, w)
        maps.append(F.interpolate(part, size=HW[0], mode='bilinear', align_corners=False))
    fused = torch.relu(torch.einsum('bchw,c->bhw', torch.cat(maps, 1), attn.fuse[0].weight[0])
                       + attn.fuse[0].bias)
    torch.testing.assert_close(mask, fused.reshape(2, 5, 4, 6), rtol=1e-4, atol=1e-5)


def test_attention_to_mask_ignores_padded_keys_in_values():
    torch.manual_seed(0)
    attn = AttentionToMask(embed_dims=16, num_heads=2, num_levels=3).eval()
    query, memory = torch.randn(1, 3, 16), torch.randn(1, LENGTH, 16)
    pad = torch.zeros(1, LENGTH, dtype=torch.bool)
    pad[0, -2:] = True
    changed = memory.clone()
    changed[0, -2:] += 10.0
    out_a, _ = attn(query, memory, HW, pad)
    out_b, _ = attn(query, changed, HW, pad)
    torch.testing.assert_close(out_a, out_b)
    mask_only = AttentionToMask(16, 2, 3, with_value=False)
    value, mask = mask_only(query, memory, HW)
    assert value is None and mask.shape == (1, 3, 4, 6)
    assert not hasattr(mask_only, 'v')


@pytest.mark.parametrize('self_attn', [False, True])
def test_mask_decoder_outputs_and_query_independence(self_attn):
    torch.manual_seed(0)
    dec = PanSegMaskDecoder(num_layers=3, embed_dims=16, num_heads=2, num_levels=3,
                            self_attn=self_attn).eval()
    dec.init_weights()
    query, memory = torch.randn(1, 4, 16), torch.randn(1, LENGTH, 16)
    masks, queries = dec(query, memory, HW)
    assert len(masks) == 4 and len(queries) == 3  # every layer + the final mask stage
    assert all(m.shape == (1, 4, 4, 6) for m in masks)
    changed = query.clone()
    changed[0, 0] += 1.0
    masks_b, _ = dec(changed, memory, HW)
    # things: no self-attention, so query 1 does not see query 0; stuff: it does
    same = torch.allclose(masks[-1][0, 1], masks_b[-1][0, 1])
    assert same != self_attn


def _filter(max_rounds=3):
    assigner = dict(type='HungarianAssigner', match_costs=[
        dict(type='FocalLossCost', weight=2.0),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)])
    return PanSegQueryFilter(assigner=assigner, max_rounds=max_rounds)


def _boxes_cxcywh(boxes_xyxy, size=100.0):
    b = torch.tensor(boxes_xyxy, dtype=torch.float) / size
    return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                        b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def test_query_filter_rounds_and_assignment():
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 30., 30.], [60., 60., 90., 90.]]),
                      labels=torch.tensor([0, 1]))
    meta = dict(img_shape=(100, 100))
    # queries 0/3 exact, 1/4 close, 2/5 far; class logits favour the right class
    boxes = _boxes_cxcywh([[10, 10, 30, 30], [11, 11, 31, 31], [0, 40, 20, 60],
                           [60, 60, 90, 90], [61, 61, 91, 91], [40, 0, 60, 20]])
    cls = torch.full((6, 2), -4.0)
    cls[[0, 1, 2], 0] = 4.0
    cls[[3, 4, 5], 1] = 4.0
    q, g = _filter()(cls, boxes, gt, meta)
    # round 1 takes the exact queries, round 2 the close ones, round 3 the rest
    assert q[:2].tolist() == [0, 3] and g[:2].tolist() == [0, 1]
    assert sorted(q[2:4].tolist()) == [1, 4]
    assert sorted(q.tolist()) == list(range(6))
    assert all(int(g[i]) == (0 if int(q[i]) < 3 else 1) for i in range(4))
    # 5 queries, 2 gts: min(3, 5 // 2) = 2 rounds -> 4 queries kept, never twice
    q5, _ = _filter()(cls[:5], boxes[:5], gt, meta)
    assert len(q5) == 4 and len(set(q5.tolist())) == 4
    # one round only -> one-to-one matching
    q1, _ = _filter(max_rounds=1)(cls, boxes, gt, meta)
    assert q1.tolist() == [0, 3]
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    assert len(_filter()(cls, boxes, empty, meta)[0]) == 0


def _rect(h, w, y0, y1, x0, x1, value=1.0):
    m = torch.zeros(h, w)
    m[y0:y1, x0:x1] = value
    return m


def test_mask_wise_merging_rules():
    merge = MaskWiseMerging(num_things=2, num_classes=4, score_thr=0.25, overlap_thr_thing=0.4,
                            overlap_thr_stuff=0.2, mask_thr=0.5)
    h, w = 10, 10
    masks = torch.stack([
        _rect(h, w, 0, 5, 0, 5),           # 0 thing, score 0.9
        _rect(h, w, 0, 5, 3, 8),           # 1 thing, overlaps 0 by 10/25 = 0.4 -> kept
        _rect(h, w, 0, 5, 0, 4),           # 2 thing, fully covered -> dropped
        _rect(h, w, 5, 10, 0, 10),         # 3 stuff, no overlap -> kept
        _rect(h, w, 3, 10, 0, 10),         # 4 stuff, overlap > 0.2 -> dropped
        _rect(h, w, 0, 2, 8, 10),          # 5 thing, low score -> dropped
        _rect(h, w, 0, 6, 9, 10, 0.6),     # 6 thing: class 0.9 but mean mask 0.6 -> 0.324
    ])
    labels = torch.tensor([0, 1, 0, 2, 3, 1, 0])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.2, 0.9])
    pan, new_scores, kept = merge(masks, labels, scores)
    torch.testing.assert_close(new_scores[6], torch.tensor(0.9 * 0.36))
    ids = pan.unique().tolist()
    # no pixel belongs to two segments: the map holds exactly one id per pixel, and the
    # segments kept are 0, 1, 3 and 6
    assert pan[0, 0] == 0 + 1 * INSTANCE_OFFSET            # highest score painted first
    assert pan[0, 4] == pan[0, 0]                          # 1 only paints unpainted pixels
    second = pan[0, 6]
    assert second % INSTANCE_OFFSET == 1 and second != pan[0, 0]
    assert (pan[5:, :9] == 2).all()                        # stuff painted with its label
    assert 3 not in ids                                    # stuff 4 dropped (overlap 66/70)
    assert (pan[2:5, 9] == 0 + 3 * INSTANCE_OFFSET).all()  # 6: the unpainted part of col 9
    thing_ids = {int(v) // INSTANCE_OFFSET for v in ids if v % INSTANCE_OFFSET < 2}
    assert thing_ids == {1, 2, 3}                          # 2 and 5 dropped
    assert kept == [0, 1, 3, 6]
    # score threshold: nothing above 0.25 -> everything VOID
    pan_void, _, _ = merge(masks, labels, torch.full((7,), 0.2))
    assert (pan_void == 4).all()


def test_mask_wise_merging_paints_disjoint_segments():
    torch.manual_seed(0)
    merge = MaskWiseMerging(num_things=3, num_classes=5, score_thr=0.1)
    masks = torch.rand(12, 16, 16) * 0.4  # below the 0.5 binarisation outside the boxes
    for i in range(12):
        y0, x0 = torch.randint(0, 12, (2,)).tolist()
        hh, ww = torch.randint(3, 9, (2,)).tolist()
        masks[i, y0:y0 + hh, x0:x0 + ww] += 0.5
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 4, 3, 4])
    pan, scores, kept = merge(masks, labels, torch.rand(12))
    binary = masks > 0.5
    painted = torch.zeros(16, 16, dtype=torch.bool)
    for i in scores.argsort(descending=True).tolist():
        area = int(binary[i].sum())
        thr = 0.4 if labels[i] < 3 else 0.2
        overlap = int((binary[i] & painted).sum()) / max(area, 1)
        should_keep = scores[i] >= 0.1 and area > 0 and overlap <= thr
        assert (i in kept) == bool(should_keep)
        if i in kept:
            paint = binary[i] & ~painted
            values = pan[paint].unique()
            assert len(values) == 1 and int(values[0]) % INSTANCE_OFFSET == int(labels[i])
            assert not (pan == values[0])[~paint].any()  # no other pixel carries this id
            painted |= paint
    assert (pan[~painted] == 5).all()
    assert len(kept) > 2
