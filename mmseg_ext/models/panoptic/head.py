"""Panoptic SegFormer head: location decoder outputs, query filter, mask decoders, losses.

Paper sections: location decoder Sec. 3.3, query decoupling and mask decoder Sec. 3.4, losses
Sec. 3.6 (Eq. 6), mask-wise merging Sec. 3.5. The deformable location decoder itself runs in the
detector (mmdet's ``DeformableDetrTransformerDecoder``); this head owns its class / box branches.
"""

import torch
import torch.nn.functional as F
from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmdet.utils import reduce_mean
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData, PixelData
from torch import Tensor, nn

# Dice with squared denominators on non-negative masks (no activation), weight 2 (Sec. 3.6).
DICE_LOSS = dict(type='DiceLoss', use_sigmoid=False, activate=False, naive_dice=False, eps=1e-6,
                 loss_weight=2.0)
# Binary focal loss per stuff query; the official code scales its weight-2 focal loss by 2.
STUFF_FOCAL_LOSS = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                        loss_weight=4.0)

@MODELS.register_module()
class PanopticSegFormerHead(DeformableDETRHead):
    """Head of Panoptic SegFormer (Li et al., CVPR 2022).

    Args:
        num_things_classes (int): Thing classes (the location decoder's classes).
        num_stuff_classes (int): Stuff classes; one learned stuff query each.
        thing_mask_decoder (dict): ``PanSegMaskDecoder`` for things (4 layers, no self-attn).
        stuff_mask_decoder (dict): ``PanSegMaskDecoder`` for stuff (6 layers, self-attn).
        num_mask_levels (int): Memory levels the mask decoders attend to (strides 8, 16, 32).
        loss_mask (dict): Dice loss on every mask-decoder layer.
        loss_stuff_cls (dict): Binary focal loss per stuff query (present / absent).
        train_cfg (dict): ``assigner`` (location decoder), ``query_filter`` and
            ``mask_assigner`` (thing masks among the filtered queries).
        test_cfg (dict): ``max_per_img`` (thing queries kept) and ``merging``
            (a ``MaskWiseMerging`` config without the class counts).
    """

    def __init__(self, *args, num_things_classes: int = 80, num_stuff_classes: int = 53,
                 thing_mask_decoder: dict | None = None,
                 stuff_mask_decoder: dict | None = None,
                 num_mask_levels: int = 3,
                 loss_mask: dict | None = None,
                 loss_stuff_cls: dict | None = None,
                 **kwargs) -> None:
        thing_mask_decoder = thing_mask_decoder or dict(type='PanSegMaskDecoder', num_layers=4)
        stuff_mask_decoder = stuff_mask_decoder or dict(
            type='PanSegMaskDecoder', num_layers=6, self_attn=True)
        loss_mask = loss_mask or DICE_LOSS
        loss_stuff_cls = loss_stuff_cls or STUFF_FOCAL_LOSS
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_mask_levels = num_mask_levels
        self._thing_cfg = thing_mask_decoder
        self._stuff_cfg = stuff_mask_decoder
        super().__init__(*args, num_classes=num_things_classes, **kwargs)
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_stuff_cls = MODELS.build(loss_stuff_cls)
        if self.train_cfg:
            self.query_filter = TASK_UTILS.build(self.train_cfg['query_filter'])
            self.mask_assigner = TASK_UTILS.build(self.train_cfg['mask_assigner'])
        self.test_cfg = self.test_cfg or dict(max_per_img=100)
        self.merger = TASK_UTILS.build(dict(
            **self.test_cfg.get('merging', dict(type='MaskWiseMerging')),
            num_things=num_things_classes,
            num_classes=num_things_classes + num_stuff_classes))

    def _init_layers(self) -> None:
        """Location branches (from mmdet) plus stuff queries, mask decoders, stuff classifiers."""
        super()._init_layers()
        self.thing_mask_decoder = MODELS.build(self._thing_cfg)
        self.stuff_mask_decoder = MODELS.build(self._stuff_cfg)
        # content and positional halves, like the thing queries of the location decoder
        self.stuff_query = nn.Embedding(self.num_stuff_classes, self.embed_dims * 2)
        self.stuff_cls_branches = nn.ModuleList(
            nn.Linear(self.embed_dims, 1) for _ in range(self.stuff_mask_decoder.num_layers))

    def init_weights(self) -> None:
        super().init_weights()
        self.thing_mask_decoder.init_weights()
        self.stuff_mask_decoder.init_weights()
        for m in self.stuff_cls_branches:
            nn.init.constant_(m.bias, bias_init_with_prob(0.01))

    # ------------------------------------------------------------------ forward pieces
    def mask_memory(self, memory: Tensor, spatial_shapes: Tensor) -> tuple[Tensor, list[tuple]]:
        """Keep the first ``num_mask_levels`` encoder levels (the stride-64 level is dropped).

        As in the official code, the mask decoders attend to every position, padding included
        (the official recipe never pads: one image per GPU, ``Pad(size_divisor=1)``)."""
        hw_levels = [tuple(int(v) for v in hw) for hw in spatial_shapes[:self.num_mask_levels]]
        return memory[:, :sum(h * w for h, w in hw_levels)], hw_levels

    def stuff_forward(self, memory: Tensor,
                      hw_levels: list[tuple]) -> tuple[list[Tensor], list[Tensor]]:
        """Stuff masks (every layer) and stuff class logits ``(B, S)`` of every layer."""
        content, pos = self.stuff_query.weight.split(self.embed_dims, dim=1)
        batch = memory.size(0)
        masks, queries = self.stuff_mask_decoder(
            content.expand(batch, -1, -1), memory, hw_levels,
            query_pos=pos.expand(batch, -1, -1))
        logits = [fc(q).squeeze(-1) for fc, q in zip(self.stuff_cls_branches, queries)]
        return masks, logits

    def forward(self, hidden_states: Tensor, references: list[Tensor],
                memory: Tensor | None = None, spatial_shapes: Tensor | None = None,
                **kwargs) -> tuple[Tensor, ...]:
        """Location outputs; with ``memory`` also the final masks of the top thing queries and
        of all stuff queries (the tensor-mode forward used for FLOPs counting)."""
        all_cls, all_coords = super().forward(hidden_states, references)
        if memory is None:
            return all_cls, all_coords
        memory, hw_levels = self.mask_memory(memory, spatial_shapes)
        top = self.test_cfg.get('max_per_img', 100)
        query_inds = all_cls[-1].sigmoid().flatten(1).topk(top, dim=1)[1] // self.num_classes
        things = torch.stack([h[i] for h, i in zip(hidden_states[-1], query_inds)])
        thing_masks = self.thing_mask_decoder(things, memory, hw_levels)[0][-1]
        stuff_masks, _ = self.stuff_forward(memory, hw_levels)
        return all_cls, all_coords, thing_masks, stuff_masks[-1]

    # ------------------------------------------------------------------ ground truth
    def _panoptic_targets(self, batch_data_samples: SampleList) -> tuple[list, list, list]:
        """Things ``InstanceData`` (bboxes, labels, float masks at the padded input size),
        stuff labels (0-based among stuff) and stuff masks per image."""
        things, stuff_labels, stuff_masks = [], [], []
        for sample in batch_data_samples:
            pad_h, pad_w = sample.batch_input_shape
            gt = sample.gt_instances
            device = gt.labels.device
            masks = gt.masks.to_tensor(dtype=torch.float, device=device) \
                if len(gt) else torch.zeros((0, pad_h, pad_w), device=device)
            masks = F.pad(masks, (0, pad_w - masks.shape[-1], 0, pad_h - masks.shape[-2]))
            things.append(InstanceData(bboxes=gt.bboxes, labels=gt.labels, masks=masks))
            sem = sample.gt_sem_seg.sem_seg[0].to(device) if 'gt_sem_seg' in sample \
                else torch.full((pad_h, pad_w), 255, device=device)
            sem = F.pad(sem, (0, pad_w - sem.shape[-1], 0, pad_h - sem.shape[-2]), value=255)
            labels = sem.unique()
            labels = labels[(labels >= self.num_things_classes)
                            & (labels < self.num_things_classes + self.num_stuff_classes)]
            stuff_labels.append(labels.long() - self.num_things_classes)
            stuff_masks.append((sem[None] == labels[:, None, None]).float())
        return things, stuff_labels, stuff_masks

    # ------------------------------------------------------------------ losses
    def loss(self, hidden_states: Tensor, references: list[Tensor], enc_outputs_class=None,
             enc_outputs_coord=None, memory: Tensor = None, spatial_shapes: Tensor = None,
             batch_data_samples: SampleList = None, **kwargs) -> dict[str, Tensor]:
        metas = [s.metainfo for s in batch_data_samples]
        things, stuff_labels, stuff_masks = self._panoptic_targets(batch_data_samples)
        all_cls, all_coords = super().forward(hidden_states, references)
        device = all_cls.device
        # the official normalisers: round-1 positives (= ground-truth things) and stuff present
        num_things = reduce_mean(torch.tensor(float(sum(len(t) for t in things)),
                                              device=device)).clamp(min=1).item()
        num_stuff = reduce_mean(torch.tensor(float(sum(len(s) for s in stuff_labels)),
                                             device=device)).clamp(min=1).item()
        thing_ratio = num_things / (num_things + num_stuff)
        stuff_ratio = num_stuff / (num_things + num_stuff)

        # every location layer, the last one included: one-to-one Hungarian matching, as mmdet's
        # DETR heads (on the last layer this is the query filter's first round)
        loc_things = [InstanceData(bboxes=t.bboxes, labels=t.labels) for t in things]
        losses = {k: v * thing_ratio for k, v in super().loss_by_feat(
            all_cls, all_coords, None, None, loc_things, metas).items()}

        # the filter's rounds only choose the queries of the thing mask decoder
        filtered = [self.query_filter(c, b, t, m)
                    for c, b, t, m in zip(all_cls[-1], all_coords[-1], loc_things, metas)]
        memory, hw_levels = self.mask_memory(memory, spatial_shapes)
        losses.update(self._thing_mask_loss(hidden_states[-1], all_cls[-1], all_coords[-1],
                                            filtered, things, metas, memory, hw_levels,
                                            num_things, thing_ratio))
        losses.update(self._stuff_loss(memory, hw_levels, stuff_labels, stuff_masks, num_stuff,
                                       stuff_ratio))
        return losses

    @staticmethod
    def _upsample(masks: Tensor) -> Tensor:
        """Mask predictions at 1/8 are supervised at 1/4 (x2 bilinear), as the official code."""
        return F.interpolate(masks, scale_factor=2.0, mode='bilinear', align_corners=False)

    @staticmethod
    def _resize_targets(masks: Tensor, size: tuple[int, int]) -> Tensor:
        if masks.numel() == 0:
            return masks.new_zeros((masks.size(0), *size))
        return F.interpolate(masks[None], size=size, mode='bilinear', align_corners=False)[0]

    def _thing_mask_loss(self, queries: Tensor, cls_scores: Tensor, bbox_preds: Tensor,
                         filtered: list[Tensor], things: list[InstanceData], metas: list[dict],
                         memory: Tensor, hw_levels: list[tuple], num_things: float,
                         thing_ratio: float) -> dict[str, Tensor]:
        """Dice on every thing mask layer. Targets come from a Hungarian matching between the
        filtered queries and the ground truth (``mask_assigner``: focal 4, L1 5, GIoU 2 and a
        Dice cost on the final masks at stride 8, as the official ``HungarianAssigner_multi_info``);
        the Dice loss is averaged over the ground-truth things."""
        width = max(max(len(q) for q in filtered), 1)
        batch_queries = queries.new_zeros((queries.size(0), width, queries.size(-1)))
        for b, q_inds in enumerate(filtered):
            batch_queries[b, :len(q_inds)] = queries[b, q_inds]
        masks, _ = self.thing_mask_decoder(batch_queries, memory, hw_levels)
        final8 = masks[-1].detach()  # the matching cost sees the final masks at stride 8
        masks = [self._upsample(m) for m in masks]
        size = masks[-1].shape[-2:]
        rows, targets = [], []
        for b, (q_inds, gt, meta) in enumerate(zip(filtered, things, metas)):
            if len(q_inds) == 0 or len(gt) == 0:
                continue
            img_h, img_w = meta['img_shape']
            factor = bbox_preds.new_tensor([img_w, img_h, img_w, img_h])
            preds = InstanceData(scores=cls_scores[b, q_inds].detach(),
                                 bboxes=bbox_cxcywh_to_xyxy(bbox_preds[b, q_inds].detach())
                                 * factor,
                                 masks=final8[b, :len(q_inds)])
            result = self.mask_assigner.assign(
                preds, InstanceData(bboxes=gt.bboxes, labels=gt.labels,
                                    masks=self._resize_targets(gt.masks, final8.shape[-2:])),
                img_meta=meta)
            pos = (result.gt_inds > 0).nonzero().squeeze(1)
            rows.append(pos + b * width)
            targets.append(self._resize_targets(gt.masks[result.gt_inds[pos] - 1], size))
        losses = {}
        for j, m in enumerate(masks):
            if rows:
                loss = self.loss_mask(m.flatten(0, 1)[torch.cat(rows)], torch.cat(targets),
                                      avg_factor=num_things)
            else:
                loss = m.sum() * 0
            name = 'loss_mask_things' if j == len(masks) - 1 else f'd{j}.loss_mask_things'
            losses[name] = loss * thing_ratio
        return losses

    def _stuff_loss(self, memory: Tensor, hw_levels: list[tuple], stuff_labels: list[Tensor],
                    stuff_masks: list[Tensor], num_stuff: float,
                    stuff_ratio: float) -> dict[str, Tensor]:
        """Dice on every stuff mask layer for the stuff classes present, and binary focal loss
        (present = class 0, absent = background) on every stuff layer's queries."""
        masks, logits = self.stuff_forward(memory, hw_levels)
        masks = [self._upsample(m) for m in masks]
        size = masks[-1].shape[-2:]
        num = self.num_stuff_classes
        rows = torch.cat([labels + b * num for b, labels in enumerate(stuff_labels)])
        targets = torch.cat([self._resize_targets(m, size) for m in stuff_masks])
        present = torch.ones(len(stuff_labels) * num, dtype=torch.long, device=memory.device)
        present[rows] = 0
        losses = {}
        for j, m in enumerate(masks):
            pred = m.flatten(0, 1)[rows]
            loss = self.loss_mask(pred, targets, avg_factor=num_stuff) if len(rows) \
                else m.sum() * 0
            name = 'loss_mask_stuff' if j == len(masks) - 1 else f'd{j}.loss_mask_stuff'
            losses[name] = loss * stuff_ratio
        for j, logit in enumerate(logits):
            losses[f'd{j}.loss_cls_stuff'] = self.loss_stuff_cls(
                logit.reshape(-1, 1), present, avg_factor=num_stuff) * stuff_ratio
        return losses

    # ------------------------------------------------------------------ inference
    def predict(self, hidden_states: Tensor, references: list[Tensor], memory: Tensor,
                spatial_shapes: Tensor, batch_data_samples: SampleList, rescale: bool = True,
                **kwargs) -> list[tuple[InstanceData, PixelData]]:
        """Per image: the top ``max_per_img`` (query, class) pairs of the last location layer
        through the thing mask decoder, all stuff queries through the stuff mask decoder, then
        :meth:`post_process`."""
        all_cls, all_coords = super().forward(hidden_states, references)
        memory, hw_levels = self.mask_memory(memory, spatial_shapes)
        stuff_masks, stuff_logits = self.stuff_forward(memory, hw_levels)
        top = self.test_cfg.get('max_per_img', 100)
        results = []
        for b, sample in enumerate(batch_data_samples):
            scores, inds = all_cls[-1][b].sigmoid().flatten().topk(top)
            labels, q_inds = inds % self.num_classes, inds // self.num_classes
            thing_masks = self.thing_mask_decoder(
                hidden_states[-1][b:b + 1, q_inds], memory[b:b + 1], hw_levels)[0][-1][0]
            results.append(self.post_process(
                thing_masks, labels, scores, all_coords[-1][b, q_inds], stuff_masks[-1][b],
                stuff_logits[-1][b].sigmoid(), sample.metainfo, rescale))
        return results

    def post_process(self, thing_masks: Tensor, thing_labels: Tensor, thing_scores: Tensor,
                     thing_boxes: Tensor, stuff_masks: Tensor, stuff_scores: Tensor, meta: dict,
                     rescale: bool = True) -> tuple[InstanceData, PixelData]:
        """Masks of the padded input (any resolution) -> original size -> mask-wise merging.

        Args:
            thing_masks (Tensor): ``(T, h, w)`` soft masks of the thing candidates.
            thing_labels, thing_scores (Tensor): ``(T,)`` thing class indices and class scores.
            thing_boxes (Tensor): ``(T, 4)`` normalised ``cx, cy, w, h`` boxes.
            stuff_masks (Tensor): ``(S, h, w)``, one per stuff class; ``stuff_scores`` ``(S,)``.
            meta (dict): the image's meta information (``img_shape``, ``batch_input_shape``,
                ``ori_shape``, ``scale_factor``).

        Returns:
            ``(instances, panoptic)``: the thing segments as instances (boxes, labels, rescored
            scores, binary masks; best first) and the merged map in mmdet's encoding.
        """
        masks = self._to_image(torch.cat([thing_masks, stuff_masks]), meta, rescale)
        stuff_labels = torch.arange(self.num_things_classes,
                                    self.num_things_classes + self.num_stuff_classes,
                                    device=thing_labels.device)
        panoptic, new_scores, _ = self.merger(masks, torch.cat([thing_labels, stuff_labels]),
                                              torch.cat([thing_scores, stuff_scores]))
        img_h, img_w = meta['img_shape']
        bboxes = bbox_cxcywh_to_xyxy(thing_boxes) * thing_boxes.new_tensor(
            [img_w, img_h, img_w, img_h])
        bboxes[:, 0::2].clamp_(0, img_w)
        bboxes[:, 1::2].clamp_(0, img_h)
        if rescale:
            bboxes = bboxes / bboxes.new_tensor(meta['scale_factor']).repeat(2)
        order = new_scores[:len(thing_labels)].argsort(descending=True)
        instances = InstanceData(bboxes=bboxes[order], labels=thing_labels[order],
                                 scores=new_scores[order],
                                 masks=masks[order] > self.merger.mask_thr)
        return instances, PixelData(sem_seg=panoptic[None])

    @staticmethod
    def _to_image(masks: Tensor, meta: dict, rescale: bool) -> Tensor:
        """``(N, h8, w8)`` masks of the padded batch -> the original (or image) size in ONE
        bilinear resize, as the official code. The padded input is resized by the same factor
        and the padding cropped, so without padding this is the official resize exactly."""
        pad_h, pad_w = meta['batch_input_shape']
        img_h, img_w = meta['img_shape']
        out_h, out_w = meta['ori_shape'][:2] if rescale else (img_h, img_w)
        size = (round(pad_h * out_h / img_h), round(pad_w * out_w / img_w))
        return F.interpolate(masks[None], size=size, mode='bilinear',
                             align_corners=False)[0, :, :out_h, :out_w]
