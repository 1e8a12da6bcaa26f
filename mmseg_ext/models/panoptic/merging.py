"""Mask-wise merging (paper Sec. 3.5, Algorithm 1)."""

import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import TASK_UTILS
from torch import Tensor


@TASK_UTILS.register_module()
class MaskWiseMerging:
    """Paint segments one by one, best first, instead of a pixel-wise argmax.

    Masks are binarised at ``mask_thr``; each segment's score is its class score times the
    square of its mask quality ``sum(mask * binary) / (area + 1)`` (the official formula; the
    ``+ 1`` lowers small segments' scores). Segments are visited in descending score;
    a segment is dropped if its score is below ``score_thr`` or if the fraction of its area
    already painted exceeds ``overlap_thr_thing`` / ``overlap_thr_stuff``; otherwise only its
    unpainted pixels are painted.

    Output encoding is mmdet's: ``label + instance_id * INSTANCE_OFFSET`` for things (ids from
    1), ``label`` for stuff and ``num_classes`` for unpainted (VOID) pixels.
    """

    def __init__(self, num_things: int, num_classes: int, score_thr: float = 0.25,
                 overlap_thr_thing: float = 0.4, overlap_thr_stuff: float = 0.2,
                 mask_thr: float = 0.5) -> None:
        self.num_things = num_things
        self.num_classes = num_classes
        self.score_thr = score_thr
        self.overlap_thr_thing = overlap_thr_thing
        self.overlap_thr_stuff = overlap_thr_stuff
        self.mask_thr = mask_thr

    def rescore(self, masks: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(binary masks, cls score * (sum(mask * binary) / (area + 1)) ** 2)``."""
        binary = masks > self.mask_thr
        quality = (masks * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1)
        return binary, scores * quality ** 2

    def __call__(self, masks: Tensor, labels: Tensor,
                 scores: Tensor) -> tuple[Tensor, Tensor, list[int]]:
        """Merge ``(N, H, W)`` soft masks with labels ``(N,)`` and class scores ``(N,)``.

        Returns the panoptic map ``(H, W)``, the rescored scores ``(N,)`` and the indices of the
        painted segments in painting order.
        """
        binary, new_scores = self.rescore(masks, scores)
        panoptic = torch.full(masks.shape[-2:], self.num_classes, dtype=torch.long,
                              device=masks.device)
        painted = torch.zeros(masks.shape[-2:], dtype=torch.bool, device=masks.device)
        instance_id, kept = 1, []
        for i in new_scores.argsort(descending=True).tolist():
            if new_scores[i] < self.score_thr:
                break
            area = int(binary[i].sum())
            if area == 0:
                continue
            is_thing = int(labels[i]) < self.num_things
            overlap_thr = self.overlap_thr_thing if is_thing else self.overlap_thr_stuff
            if int((binary[i] & painted).sum()) / area > overlap_thr:
                continue
            paint = binary[i] & ~painted
            if is_thing:
                panoptic[paint] = int(labels[i]) + instance_id * INSTANCE_OFFSET
                instance_id += 1
            else:
                panoptic[paint] = int(labels[i])
            painted |= paint
            kept.append(i)
        return panoptic, new_scores, kept
