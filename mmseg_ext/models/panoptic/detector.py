"""Panoptic SegFormer detector (Li et al., CVPR 2022, Fig. 2)."""

from mmdet.models.detectors import DeformableDETR
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList
from torch import Tensor


@MODELS.register_module()
class PanopticSegFormer(DeformableDETR):
    """Backbone -> ChannelMapper (C3-C5 + a stride-64 level) -> deformable encoder (Sec. 3.2)
    -> location decoder over thing queries with iterative box refinement (Sec. 3.3) -> mask
    decoders for things and stuff (Sec. 3.4) -> mask-wise merging (Sec. 3.5).

    Reuses mmdet's Deformable DETR for the encoder, the location decoder, the thing queries and
    the reference points; ``bbox_head`` is a :class:`PanopticSegFormerHead`. Predictions carry
    both ``pred_panoptic_seg`` and ``pred_instances`` (boxes, labels, scores, masks).
    """

    def forward_transformer(self, img_feats: tuple[Tensor],
                            batch_data_samples: OptSampleList = None) -> dict:
        """Deformable DETR's forward, also handing the encoder memory to the head."""
        encoder_inputs, decoder_inputs = self.pre_transformer(img_feats, batch_data_samples)
        encoder_outputs = self.forward_encoder(**encoder_inputs)
        tmp_dec_in, head_inputs = self.pre_decoder(**encoder_outputs)
        decoder_inputs.update(tmp_dec_in)
        head_inputs.update(self.forward_decoder(**decoder_inputs))
        head_inputs.update(memory=encoder_outputs['memory'],
                           spatial_shapes=encoder_outputs['spatial_shapes'])
        return head_inputs

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        head_inputs = self.forward_transformer(self.extract_feat(batch_inputs),
                                               batch_data_samples)
        results = self.bbox_head.predict(**head_inputs, rescale=rescale,
                                         batch_data_samples=batch_data_samples)
        for sample, (instances, panoptic) in zip(batch_data_samples, results):
            sample.pred_instances = instances
            sample.pred_panoptic_seg = panoptic
        return batch_data_samples
