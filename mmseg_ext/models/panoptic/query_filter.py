"""Query filter (paper Sec. 3.3): repeated Hungarian matching on the last location layer."""

import torch
from mmdet.registry import TASK_UTILS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmengine.structures import InstanceData
from torch import Tensor


@TASK_UTILS.register_module()
class PanSegQueryFilter:
    """Select the thing queries that go on to the mask decoder during training.

    Up to ``max_rounds`` rounds of one-to-one Hungarian matching (cost from ``assigner``: focal 2,
    L1 5, GIoU 2), each over the queries not matched in earlier rounds; the number of rounds is
    ``min(max_rounds, num_queries // num_gt)`` (the official ``HungarianAssigner_filter`` with
    ``max_pos=3`` and 300 queries). Every matched query goes on to the mask decoder.

    The rounds only choose queries. The location loss of the last layer uses the first round
    alone (the official code samples its targets from round 1, so ``num_total_pos`` is the number
    of ground-truth things); that round is the plain Hungarian matching the head's own assigner
    computes with the same costs.

    Args:
        assigner (dict): An mmdet ``HungarianAssigner`` config.
        max_rounds (int): Most matching rounds (3 in the paper).
    """

    def __init__(self, assigner: dict, max_rounds: int = 3) -> None:
        self.assigner = TASK_UTILS.build(assigner)
        self.max_rounds = max_rounds

    def __call__(self, cls_score: Tensor, bbox_pred: Tensor, gt_instances: InstanceData,
                 img_meta: dict) -> Tensor:
        """Return the indices of the kept queries in ascending order (as the official code).

        ``cls_score`` is ``(Q, num_things)`` logits, ``bbox_pred`` ``(Q, 4)`` normalised
        ``cx, cy, w, h``; ``gt_instances`` holds ``bboxes`` (absolute ``x1y1x2y2``) and ``labels``.
        """
        num_queries, num_gt = bbox_pred.size(0), len(gt_instances)
        free = torch.ones(num_queries, dtype=torch.bool, device=bbox_pred.device)
        if num_gt == 0:
            return (~free).nonzero().squeeze(1)
        img_h, img_w = img_meta['img_shape']
        factor = bbox_pred.new_tensor([img_w, img_h, img_w, img_h])
        bboxes = bbox_cxcywh_to_xyxy(bbox_pred) * factor
        for _ in range(min(self.max_rounds, num_queries // num_gt)):
            candidates = free.nonzero().squeeze(1)
            result = self.assigner.assign(
                InstanceData(scores=cls_score[candidates], bboxes=bboxes[candidates]),
                gt_instances, img_meta=img_meta)
            free[candidates[result.gt_inds > 0]] = False
        return (~free).nonzero().squeeze(1)
