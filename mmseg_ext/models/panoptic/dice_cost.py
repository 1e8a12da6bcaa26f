"""Dice matching cost of the mask assignment among filtered queries (official form)."""
from mmdet.models.task_modules.assigners.match_cost import DiceCost
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class PanSegDiceCost(DiceCost):
    """``1 - 2 sum(p g) / ((sum(p^2) + eps) + (sum(g^2) + eps))`` per (query, ground truth).

    The official ``DiceCost`` (easymd/core/bbox/match_costs) adds ``eps`` = 1e-3 to each squared
    sum and nothing to the numerator; mmdet's ``DiceCost(naive_dice=False)`` adds ``eps`` once to
    the numerator and once to the denominator. Predictions are the non-negative masks at stride 8.
    """

    def __init__(self, eps: float = 1e-3, weight: float = 1.0) -> None:
        super().__init__(pred_act=False, eps=eps, naive_dice=False, weight=weight)

    def _binary_mask_dice_loss(self, mask_preds: Tensor, gt_masks: Tensor) -> Tensor:
        pred, gt = mask_preds.flatten(1), gt_masks.flatten(1).float()
        denominator = pred.pow(2).sum(1)[:, None] + gt.pow(2).sum(1)[None, :] + 2 * self.eps
        return 1 - 2 * (pred @ gt.T) / denominator
