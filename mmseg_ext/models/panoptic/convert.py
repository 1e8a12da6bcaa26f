"""Official Panoptic SegFormer checkpoints (zhiqi-li/Panoptic-SegFormer: mmdet 2.x / mmcv 1.x
layout) -> this project's keys. ``tools/model_converters/panoptic_segformer_weights.py`` is the
command line.

Key mapping (official -> ours):

    backbone.* (ResNet)                                      unchanged
    backbone.* (PVTv2: patch_embed1 / block1 / norm1 ...)    mmdet's ``pvt_convert``
    backbone.* (Swin: layers.i.blocks.j ...)                 mmdet's ``swin_converter``
    neck.*                                                   unchanged (ChannelMapper)
    bbox_head.transformer.encoder.layers.i.attentions.0.*    encoder.layers.i.self_attn.*
    bbox_head.transformer.{encoder,decoder}.layers.i.ffns.0.*    ...layers.i.ffn.*
    bbox_head.transformer.{encoder,decoder}.layers.i.norms.*     ...layers.i.norms.*
    bbox_head.transformer.decoder.layers.i.attentions.0.*    decoder.layers.i.self_attn.*
    bbox_head.transformer.decoder.layers.i.attentions.1.*    decoder.layers.i.cross_attn.*
    bbox_head.transformer.level_embeds                       level_embed
    bbox_head.transformer.reference_points.*                 reference_points_fc.*
    bbox_head.query_embedding.weight                         query_embedding.weight
    bbox_head.{cls,reg}_branches.*, stuff_query.*            bbox_head.(same)
    bbox_head.cls_stuff_branches.j.*                         bbox_head.stuff_cls_branches.j.*
    bbox_head.things_mask_head / stuff_mask_head             bbox_head.thing_ / stuff_mask_decoder
        blocks.j.attn.{q,k,v,proj}                           layers.j.cross_attn.{q,k,v,proj}
        blocks.j.attn.linear_l{1,2,3}.0                      layers.j.cross_attn.level_fcs.{0,1,2}.0
        blocks.j.attn.linear.0                               layers.j.cross_attn.fuse.0
        blocks.j.self_attention.qkv / proj                   layers.j.self_attn.in_proj_* / out_proj
        blocks.j.{norm3,head_norm1,head_norm2}      layers.j.{norm_self,norm_cross,norm_mlp}
        blocks.j.mlp.fc1 / fc2                               layers.j.mlp.0 / mlp.2
        attnen.*                                             mask_head.* (same inner renames)
    bbox_head.reg_branches2.*, bbox_head.cls_thing_branches.*   dropped (UNUSED_BRANCHES)
"""
import re
from collections import OrderedDict

from torch import Tensor

# Held by the official head, never used: their losses are multiplied by 0 and the official
# inference does not read them.
UNUSED_BRANCHES = {
    'bbox_head.reg_branches2.': 'box MLPs on the thing mask decoder (loss x 0, unused at test)',
    'bbox_head.cls_thing_branches.': 'thing classifiers on the thing mask decoder (loss x 0, '
                                     'unused at test)',
}

_MASK_HEAD = [
    (r'blocks\.(\d+)\.attn\.linear_l(\d)\.0\.', lambda m: f'layers.{m[1]}.cross_attn.level_fcs.'
                                                         f'{int(m[2]) - 1}.0.'),
    (r'blocks\.(\d+)\.attn\.linear\.0\.', r'layers.\1.cross_attn.fuse.0.'),
    (r'blocks\.(\d+)\.attn\.(q|k|v|proj)\.', r'layers.\1.cross_attn.\2.'),
    (r'blocks\.(\d+)\.self_attention\.qkv\.(weight|bias)$', r'layers.\1.self_attn.in_proj_\2'),
    (r'blocks\.(\d+)\.self_attention\.proj\.', r'layers.\1.self_attn.out_proj.'),
    (r'blocks\.(\d+)\.norm3\.', r'layers.\1.norm_self.'),
    (r'blocks\.(\d+)\.head_norm1\.', r'layers.\1.norm_cross.'),
    (r'blocks\.(\d+)\.head_norm2\.', r'layers.\1.norm_mlp.'),
    (r'blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.mlp.0.'),
    (r'blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.mlp.2.'),
    (r'attnen\.linear_l(\d)\.0\.', lambda m: f'mask_head.level_fcs.{int(m[1]) - 1}.0.'),
    (r'attnen\.linear\.0\.', 'mask_head.fuse.0.'),
    (r'attnen\.(q|k)\.', r'mask_head.\1.'),
]
_HEAD = [
    (r'^neck\.', 'neck.'),
    (r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.attentions\.0\.',
     r'\1.layers.\2.self_attn.'),
    (r'^bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.',
     r'decoder.layers.\1.cross_attn.'),
    (r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.',
     r'\1.layers.\2.ffn.'),
    (r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.norms\.',
     r'\1.layers.\2.norms.'),
    (r'^bbox_head\.transformer\.level_embeds$', 'level_embed'),
    (r'^bbox_head\.transformer\.reference_points\.', 'reference_points_fc.'),
    (r'^bbox_head\.query_embedding\.', 'query_embedding.'),
    (r'^bbox_head\.(cls_branches|reg_branches|stuff_query)\.', r'bbox_head.\1.'),
    (r'^bbox_head\.cls_stuff_branches\.', 'bbox_head.stuff_cls_branches.'),
]
_MASK_HEADS = {'bbox_head.things_mask_head.': 'bbox_head.thing_mask_decoder.',
               'bbox_head.stuff_mask_head.': 'bbox_head.stuff_mask_decoder.'}


def _rename(rules, key: str) -> str | None:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    return None


def convert_head_key(key: str) -> str | None:
    """Our key for an official neck / transformer / head key; None if no rule applies."""
    for old, new in _MASK_HEADS.items():
        if key.startswith(old):
            inner = _rename(_MASK_HEAD, key[len(old):])
            return None if inner is None else new + inner
    return _rename(_HEAD, key)


def _convert_backbone(backbone: dict) -> dict:
    """ResNet keys are mmdet's own; PVTv2 and Swin come in their original layouts."""
    if any(k.startswith('patch_embed1.') for k in backbone):
        from mmdet.models.backbones.pvt import pvt_convert
        return pvt_convert(backbone)
    if any(k.startswith('layers.0.blocks.') for k in backbone):
        from mmdet.models.backbones.swin import swin_converter
        return {k.removeprefix('backbone.'): v for k, v in swin_converter(backbone).items()}
    return backbone


def convert_panoptic_segformer(state_dict: dict[str, Tensor]
                               ) -> tuple[OrderedDict, list[tuple[str, str]]]:
    """Official state dict -> ``(ours, [(dropped key, why)])``.

    Raises ``KeyError`` naming every key that has no home and is not a known unused branch.
    """
    backbone = {k.removeprefix('backbone.'): v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    out = OrderedDict(('backbone.' + k, v) for k, v in _convert_backbone(backbone).items())
    dropped, unknown = [], []
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            continue
        branch = next((b for b in UNUSED_BRANCHES if key.startswith(b)), None)
        if branch is not None:
            dropped.append((key, UNUSED_BRANCHES[branch]))
            continue
        new = convert_head_key(key)
        if new is None:
            unknown.append(key)
        else:
            out[new] = value
    if unknown:
        raise KeyError(f'{len(unknown)} keys of the official checkpoint have no counterpart: '
                       f'{unknown[:20]}; is it a Panoptic SegFormer (PanformerHead) checkpoint?')
    return out, dropped
