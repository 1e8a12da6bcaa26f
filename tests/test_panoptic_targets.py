"""Panoptic SegFormer training targets against the official code (zhiqi-li/Panoptic-SegFormer,
easymd/models/panformer/): the last location layer's loss, the query filter's role, the mask
assignment among the filtered queries and its Dice cost. Expected values are worked out by hand
or come from mmdet's own DETR loss, never from this project's head."""
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmcv.ops')
from mmdet.registry import MODELS, TASK_UTILS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.structures import InstanceData, PixelData  # noqa: E402

import mmseg_ext  # noqa: E402,F401

CONFIGS = Path(__file__).resolve().parents[1] / 'configs/panoptic_segformer'
NUM_QUERIES, SIZE = 300, 96
# per image: ground-truth things (x1, y1, x2, y2, label) and the stuff labels present
THINGS = [[(4, 4, 28, 28, 0), (36, 4, 60, 28, 1), (68, 4, 92, 28, 2)],
          [(4, 36, 28, 60, 3), (36, 36, 60, 60, 4)]]
STUFF = [[5, 6], [7]]
# the three queries of each ground truth predict its box shifted right by these (normalised) cx
SHIFTS = (0.01, 0.03, 0.05)


def _head():
    init_default_scope('mmdet')
    cfg = Config.fromfile(str(CONFIGS / 'panoptic-segformer_r18_toy-coco-panoptic.py'))
    dims = 32
    head_cfg = cfg.model.bbox_head
    head_cfg.update(embed_dims=dims, num_pred_layer=2, share_pred_layer=False,
                    as_two_stage=False, train_cfg=cfg.model.train_cfg,
                    test_cfg=cfg.model.test_cfg)
    head_cfg.thing_mask_decoder.update(embed_dims=dims)
    head_cfg.stuff_mask_decoder.update(embed_dims=dims)
    torch.manual_seed(0)
    head = MODELS.build(head_cfg)
    head.init_weights()
    # last layer: class logits = the first 5 channels of the query, boxes = the references
    with torch.no_grad():
        head.cls_branches[1].weight.zero_()
        head.cls_branches[1].weight[:, :5] = torch.eye(5)
        head.cls_branches[1].bias.zero_()
        head.reg_branches[1][-1].weight.zero_()
        head.reg_branches[1][-1].bias.zero_()
    return head


def _batch():
    """Two images, 3 + 2 things, 300 queries. Queries 3k, 3k+1, 3k+2 sit on thing k shifted by
    SHIFTS with a confident class; the other queries are small boxes in the empty bottom right
    with low scores."""
    hidden = torch.zeros(2, 2, NUM_QUERIES, 32)
    hidden[..., :5] = -4.0
    refs = torch.tensor([0.9, 0.9, 0.02, 0.02]).repeat(2, NUM_QUERIES, 1)
    samples = []
    for b, things in enumerate(THINGS):
        for k, (x1, y1, x2, y2, label) in enumerate(things):
            box = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) / SIZE
            for r, shift in enumerate(SHIFTS):
                refs[b, 3 * k + r] = box + torch.tensor([shift, 0, 0, 0])
                hidden[:, b, 3 * k + r, label] = 4.0
        masks = torch.zeros(len(things), SIZE, SIZE, dtype=torch.bool)
        for k, (x1, y1, x2, y2, _) in enumerate(things):
            masks[k, y1:y2, x1:x2] = True
        sem = torch.full((1, SIZE, SIZE), 255, dtype=torch.long)
        for i, label in enumerate(STUFF[b]):
            sem[0, 64 + 10 * i:74 + 10 * i] = label
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), batch_input_shape=(SIZE, SIZE),
                                             ori_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([t[:4] for t in things], dtype=torch.float),
            labels=torch.tensor([t[4] for t in things]),
            masks=BitmapMasks(masks.numpy(), SIZE, SIZE))
        sample.gt_sem_seg = PixelData(sem_seg=sem)
        samples.append(sample)
    # four encoder levels of the 96 x 96 input (strides 8 .. 64); the mask decoders use three
    shapes = torch.tensor([[12, 12], [6, 6], [3, 3], [2, 2]])
    memory = torch.randn(2, int(shapes.prod(1).sum()), 32)
    return hidden, [refs, refs], memory, shapes, samples


def test_last_location_layer_is_one_to_one_and_normalised_by_gt_things():
    from mmdet.models.dense_heads import DeformableDETRHead  # after mmseg_ext's compat fixes

    head = _head()
    hidden, refs, memory, shapes, samples = _batch()
    seen = []
    assign = head.mask_assigner.assign

    def spy(pred_instances, gt_instances, img_meta=None):
        seen.append((pred_instances, gt_instances))
        return assign(pred_instances, gt_instances, img_meta=img_meta)

    head.mask_assigner.assign = spy
    losses = head.loss(hidden, refs, memory=memory, spatial_shapes=shapes,
                       batch_data_samples=samples)
    num_things, num_stuff = 5, 3
    ratio = num_things / (num_things + num_stuff)
    # by hand: round 1 matches each thing to its closest query (shift 0.01); L1 weight 5 over
    # cx, cy, w, h, normalised by the 5 ground-truth things (one-to-many would give 0.15)
    assert losses['loss_bbox'].item() == pytest.approx(5 * 0.01 * ratio, rel=1e-4)
    # the same as mmdet's one-to-one DETR loss of that layer
    all_cls, all_coords = DeformableDETRHead.forward(head, hidden, refs)
    gts = [InstanceData(bboxes=s.gt_instances.bboxes, labels=s.gt_instances.labels)
           for s in samples]
    ref = DeformableDETRHead.loss_by_feat_single(head, all_cls[-1], all_coords[-1], gts,
                                                 [s.metainfo for s in samples])
    for name, value in zip(('loss_cls', 'loss_bbox', 'loss_iou'), ref):
        torch.testing.assert_close(losses[name], value * ratio)
    # the filter's three rounds (min(3, 300 // n_gt)) choose the mask decoder's queries: all
    # three queries of every thing, in ascending order; the Dice cost sees stride-8 masks
    for (preds, gt_inst), things in zip(seen, THINGS):
        expected = torch.tensor([[x1 + s * SIZE, y1, x2 + s * SIZE, y2]
                                 for x1, y1, x2, y2, _ in things for s in SHIFTS])
        torch.testing.assert_close(preds.bboxes, expected, rtol=0, atol=1e-3)
        assert preds.masks.shape[-2:] == (12, 12) and gt_inst.masks.shape[-2:] == (12, 12)
    assert all(torch.isfinite(v) for v in losses.values())


def _mask_assigner(focal_weight=None):
    cfg = Config.fromfile(str(CONFIGS / 'panoptic-segformer_r50_coco-panoptic-12e.py'))
    assigner = cfg.model.train_cfg.mask_assigner
    if focal_weight is not None:
        assigner.match_costs[0].weight = focal_weight
    return TASK_UTILS.build(assigner)


def test_mask_assignment_uses_the_official_costs():
    """Two filtered queries, two things in a 40 x 40 image. Query 0 is confident about thing 0's
    class (p 0.9 vs 0.1) but has thing 1's box and mask; query 1 (p 0.5) has thing 0's.

    By hand (focal: -ln(p) 0.25 (1-p)^2 + ln(1-p) 0.75 p^2; L1 x5 on normalised cx, cy, w, h;
    GIoU x2; Dice x2 with 1 - 2ab / (a^2 + 1e-3 + b^2 + 1e-3)):
    focal(0.9) = -1.398557, focal(0.1) = 0.465483, focal(0.5) = -0.086643;
    box + mask cost 0.166697 for a wrong pair, -1.999875 for a right one.
    Focal weight 4: keep classes 4 (-1.398557 - 0.086643) + 2 x 0.166697 = -5.607406 beats
    swap 4 (0.465483 - 0.086643) - 2 x 1.999875 = -2.484390. Weight 2: -2.637004 loses to
    -3.242070, so weight 2 would swap."""
    init_default_scope('mmdet')
    logit = torch.log(torch.tensor(9.0))  # sigmoid = 0.9
    scores = torch.tensor([[logit, -logit], [0.0, 0.0]])
    box0, box1 = [0., 0., 20., 20.], [4., 0., 24., 20.]
    mask0, mask1 = torch.zeros(4, 6), torch.zeros(4, 6)
    mask0[:, :4], mask1[:, 2:] = 1, 1
    preds = InstanceData(scores=scores, bboxes=torch.tensor([box1, box0]),
                         masks=torch.stack([mask1, mask0]))
    gts = InstanceData(labels=torch.tensor([0, 1]), bboxes=torch.tensor([box0, box1]),
                       masks=torch.stack([mask0, mask1]))
    meta = dict(img_shape=(40, 40))
    assert _mask_assigner().assign(preds, gts, img_meta=meta).gt_inds.tolist() == [1, 2]
    assert _mask_assigner(2.0).assign(preds, gts, img_meta=meta).gt_inds.tolist() == [2, 1]
    # the Dice cost in the official form: 16-pixel masks overlapping on 8 pixels
    dice = _mask_assigner().match_costs[3]
    torch.testing.assert_close(
        dice(InstanceData(masks=mask0[None]), gts),
        2 * torch.tensor([[1 - 32 / 32.002, 1 - 16 / 32.002]]), atol=1e-7, rtol=0)
