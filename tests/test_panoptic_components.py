"""Panoptic SegFormer components on tiny shapes: attention-to-mask, mask decoder, query filter,
mask-wise merging."""
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('mmcv.ops')
from mmdet.evaluation.functional import INSTANCE_OFFSET  # noqa: E402
from mmengine.registry import DefaultScope  # noqa: E402
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


def test_attention_to_mask_values_use_every_key():
    """Values: proj(softmax(Q K^T / sqrt(d)) V) over every key, as the official ``Attention``
    (it receives the key padding mask and does not apply it); the mask-only stage has no V."""
    torch.manual_seed(0)
    attn = AttentionToMask(embed_dims=16, num_heads=2, num_levels=3).eval()
    query, memory = torch.randn(1, 3, 16), torch.randn(1, LENGTH, 16)
    out, _ = attn(query, memory, HW)
    q = attn.q(query).reshape(1, 3, 2, 8).transpose(1, 2)
    k = attn.k(memory).reshape(1, LENGTH, 2, 8).transpose(1, 2)
    v = attn.v(memory).reshape(1, LENGTH, 2, 8).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(-2, -1) / 8 ** 0.5, dim=-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(1, 3, 16))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-6)
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
    # mmdet's scope whatever an earlier test in this process left as the default (under xdist
    # another module may have run first)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return PanSegQueryFilter(assigner=assigner, max_rounds=max_rounds)


def _boxes_cxcywh(boxes_xyxy, size=100.0):
    b = torch.tensor(boxes_xyxy, dtype=torch.float) / size
    return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                        b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


def test_query_filter_rounds():
    gt = InstanceData(bboxes=torch.tensor([[10., 10., 30., 30.], [60., 60., 90., 90.]]),
                      labels=torch.tensor([0, 1]))
    meta = dict(img_shape=(100, 100))
    # queries 0/3 exact, 1/4 close, 2/5 far; class logits favour the right class
    boxes = _boxes_cxcywh([[10, 10, 30, 30], [11, 11, 31, 31], [0, 40, 20, 60],
                           [60, 60, 90, 90], [61, 61, 91, 91], [40, 0, 60, 20]])
    cls = torch.full((6, 2), -4.0)
    cls[[0, 1, 2], 0] = 4.0
    cls[[3, 4, 5], 1] = 4.0
    # 6 queries, 2 gts: min(3, 6 // 2) = 3 rounds keep all six, in ascending order
    assert _filter()(cls, boxes, gt, meta).tolist() == [0, 1, 2, 3, 4, 5]
    # one round: the exact queries; two rounds: also the close ones
    assert _filter(max_rounds=1)(cls, boxes, gt, meta).tolist() == [0, 3]
    assert _filter(max_rounds=2)(cls, boxes, gt, meta).tolist() == [0, 1, 3, 4]
    # 5 queries, 2 gts: min(3, 5 // 2) = 2 rounds
    assert _filter()(cls[:5], boxes[:5], gt, meta).tolist() == [0, 1, 3, 4]
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    assert len(_filter()(cls, boxes, empty, meta)) == 0


def _rect(h, w, y0, y1, x0, x1, value=1.0):
    m = torch.zeros(h, w)
    m[y0:y1, x0:x1] = value
    return m


def test_mask_wise_merging_by_hand():
    """Official merging (easymd PanformerHead.get_bboxes) on a 6 x 6 image, worked out by hand:
    binary = mask > 0.5; score = class score * (sum(mask * binary) / (area + 1))^2; visit by
    score; drop below 0.25, or if more than 0.4 (thing) / 0.2 (stuff) of the area is painted;
    paint only unpainted pixels; thing ids 1, 2, ... in painting order."""
    merge = MaskWiseMerging(num_things=2, num_classes=4, score_thr=0.25, overlap_thr_thing=0.4,
                            overlap_thr_stuff=0.2, mask_thr=0.5)
    h = w = 6
    a = _rect(h, w, 0, 2, 0, 2)
    a[2, 0] = 0.5                                   # exactly 0.5 is not in the binary mask
    masks = torch.stack([
        a,                                          # A thing 0: area 4, q 4/5
        _rect(h, w, 1, 2, 1, 3),                    # B thing 1: area 2, q 2/3
        _rect(h, w, 0, 2, 3, 6, 0.6),               # C thing 1: area 6, q 3.6/7
        _rect(h, w, 4, 6, 0, 6),                    # D stuff 2: area 12, q 12/13
        _rect(h, w, 3, 6, 0, 3),                    # E stuff 3: area 9, q 9/10
        _rect(h, w, 2, 4, 4, 6, 0.9),               # F thing 0: area 4, q 3.6/5
        _rect(h, w, 2, 5, 3, 4),                    # G thing 1: area 3, q 3/4
    ])
    labels = torch.tensor([0, 1, 1, 2, 3, 0, 1])
    scores = torch.tensor([0.9, 0.8, 0.9, 0.7, 0.5, 0.6, 0.9])
    pan, new_scores, kept = merge(masks, labels, scores)
    # 0.9*0.8^2, 0.8*(2/3)^2, 0.9*(3.6/7)^2, 0.7*(12/13)^2, 0.5*0.9^2, 0.6*0.72^2, 0.9*0.75^2
    torch.testing.assert_close(new_scores, torch.tensor(
        [0.576, 0.355556, 0.238041, 0.596450, 0.405, 0.311040, 0.50625]), atol=1e-6, rtol=0)
    # order D .596, A .576, G .506, E .405, B .356, F .311, C .238 (< 0.25: dropped).
    # D: painted. A: no overlap, id 1. G: 1 of 3 pixels painted (0.33 <= 0.4), paints 2, id 2.
    # E: 6 of 9 painted (> 0.2), dropped. B: 1 of 2 painted (> 0.4), dropped. F: id 3.
    assert kept == [3, 0, 6, 5]
    v, a1, g2, f3 = 4, 0 + 1 * INSTANCE_OFFSET, 1 + 2 * INSTANCE_OFFSET, 0 + 3 * INSTANCE_OFFSET
    expected = torch.tensor([
        [a1, a1, v, v, v, v],
        [a1, a1, v, v, v, v],
        [v, v, v, g2, f3, f3],
        [v, v, v, g2, f3, f3],
        [2, 2, 2, 2, 2, 2],
        [2, 2, 2, 2, 2, 2],
    ])
    assert torch.equal(pan, expected)
    # nothing reaches the score threshold: every pixel VOID
    pan_void, _, kept_void = merge(masks, labels, torch.full((7,), 0.2))
    assert (pan_void == 4).all() and kept_void == []


def test_masks_reach_the_original_size_in_one_resize():
    """Official inference: the stride-8 masks go straight to the original size in one bilinear
    resize. With padding (batch > 1) the padded map is resized by the same factor and cropped."""
    from mmseg_ext.models.panoptic import PanopticSegFormerHead

    torch.manual_seed(0)
    masks = torch.rand(3, 6, 8)
    meta = dict(batch_input_shape=(48, 64), img_shape=(48, 64), ori_shape=(96, 128))
    out = PanopticSegFormerHead._to_image(masks, meta, rescale=True)
    torch.testing.assert_close(out, F.interpolate(masks[None], size=(96, 128), mode='bilinear',
                                                  align_corners=False)[0])
    padded = torch.rand(3, 6, 9)  # the input padded from 64 to 72 columns
    meta = dict(batch_input_shape=(48, 72), img_shape=(48, 64), ori_shape=(96, 128))
    out = PanopticSegFormerHead._to_image(padded, meta, rescale=True)
    torch.testing.assert_close(out, F.interpolate(padded[None], size=(96, 144), mode='bilinear',
                                                  align_corners=False)[0, :, :, :128])
    out = PanopticSegFormerHead._to_image(padded, meta, rescale=False)
    assert out.shape == (3, 48, 64)
