"""Publish a SegFormer (MiT backbone + AllMLPHead) as an HF transformers
``SegformerForSemanticSegmentation`` directory (config.json, model.safetensors).

The key maps are the inverses of the ``--from hf`` converters (:func:`backbones.mit.mit_to_hf`,
:func:`decode_heads.all_mlp_head.head_to_hf`). HF's LayerNorms use eps 1e-5 everywhere (not
configurable); ours, as the official code, 1e-6 in blocks and stage ends: the logits differ by
that alone (docs/deployment.md).
"""
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .backbones.mit import NUM_HEADS, PATCH_SIZES, PATCH_STRIDES, SR_RATIOS, MiT, mit_to_hf
from .decode_heads.all_mlp_head import AllMLPHead, head_to_hf


def _check_convertible(segmentor):
    backbone, head = segmentor.backbone, segmentor.decode_head
    if not isinstance(backbone, MiT) or any(backbone.stage_attn_cfgs):
        raise TypeError(f'--to hf needs model.backbone type MiT with the efficient '
                        f'self-attention in every stage; got {type(backbone).__name__}'
                        + (f' with stage_attn_cfgs={backbone.stage_attn_cfgs}'
                           if isinstance(backbone, MiT) else ''))
    if not isinstance(head, AllMLPHead):
        raise TypeError(f'--to hf needs model.decode_head type AllMLPHead (HF\'s decode head); '
                        f'got {type(head).__name__}')
    norm, act = head.linear_fuse.norm, getattr(head.linear_fuse, 'activate', None)
    if not isinstance(norm, _BatchNorm) or not isinstance(act, nn.ReLU):
        raise TypeError('--to hf: HF\'s decode head fuses with BatchNorm + ReLU; '
                        f'model.decode_head has {type(norm).__name__} + {type(act).__name__} '
                        '(norm_cfg / act_cfg)')
    if getattr(segmentor, 'auxiliary_head', None) is not None:
        raise TypeError('--to hf: HF SegformerForSemanticSegmentation has no auxiliary head; '
                        'remove model.auxiliary_head')


def _transformers():
    try:
        import transformers
    except ImportError as error:
        raise ImportError(f'--to hf needs HF transformers ({error}): install the hf extra, '
                          '`pip install "mmseg_ext[hf]"`') from None
    return transformers


def hf_config(segmentor, classes):
    """``transformers.SegformerConfig`` of ``segmentor`` with ``id2label`` from ``classes``."""
    SegformerConfig = _transformers().SegformerConfig
    _check_convertible(segmentor)
    backbone, head = segmentor.backbone, segmentor.decode_head
    if len(classes) != head.out_channels:
        raise ValueError(f'{len(classes)} class names for a head with {head.out_channels} '
                         'outputs: the dataset metainfo does not match model.decode_head')
    stages = backbone.stages
    hidden = [stage.norm.normalized_shape[0] for stage in stages]
    return SegformerConfig(
        num_channels=stages[0].patch_embed.proj.in_channels, num_encoder_blocks=len(stages),
        depths=[len(stage.blocks) for stage in stages], sr_ratios=list(SR_RATIOS),
        hidden_sizes=hidden, patch_sizes=list(PATCH_SIZES), strides=list(PATCH_STRIDES),
        num_attention_heads=list(NUM_HEADS),
        mlp_ratios=[stage.blocks[0].mlp.fc1.out_features // c for stage, c in zip(stages, hidden)],
        decoder_hidden_size=head.channels, semantic_loss_ignore_index=head.ignore_index,
        classifier_dropout_prob=head.dropout.p if head.dropout is not None else 0.0,
        id2label=dict(enumerate(classes)), label2id={c: i for i, c in enumerate(classes)})


def save_hf_segformer(segmentor, out_dir, classes):
    """Write ``out_dir`` loadable by ``SegformerForSemanticSegmentation.from_pretrained``;
    the weights are checked to fill HF's model exactly (no missing or unexpected key)."""
    SegformerForSemanticSegmentation = _transformers().SegformerForSemanticSegmentation
    config = hf_config(segmentor, classes)
    state = mit_to_hf(segmentor.backbone.state_dict())
    state.update(head_to_hf(segmentor.decode_head.state_dict()))
    hf = SegformerForSemanticSegmentation(config)
    missing, unexpected = hf.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KeyError(f'HF SegformerForSemanticSegmentation: missing {missing[:10]}, '
                       f'unexpected {unexpected[:10]}')
    hf.save_pretrained(out_dir, safe_serialization=True)
    return config
