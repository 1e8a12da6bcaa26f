"""Convert an official Panoptic SegFormer checkpoint (mmdet 2.x, zhiqi-li/Panoptic-SegFormer) to
this project's mmdet 3.x layout.

    python tools/model_converters/panoptic_segformer_weights.py SRC.pth DST.pth

Key mapping (official -> ours; see docs/panoptic_segformer.md):

    backbone.*, neck.*                                 unchanged (ResNet, ChannelMapper)
    bbox_head.transformer.encoder.layers.i.attentions.0.*    encoder.layers.i.self_attn.*
    bbox_head.transformer.encoder.layers.i.ffns.0.*          encoder.layers.i.ffn.*
    bbox_head.transformer.encoder.layers.i.norms.*           encoder.layers.i.norms.*
    bbox_head.transformer.decoder.layers.i.attentions.0.*    decoder.layers.i.self_attn.*
    bbox_head.transformer.decoder.layers.i.attentions.1.*    decoder.layers.i.cross_attn.*
    bbox_head.transformer.decoder.layers.i.{ffns.0,norms}.*  decoder.layers.i.{ffn,norms}.*
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
    bbox_head.reg_branches2.*, bbox_head.cls_thing_branches.*   dropped: the official code
        multiplies their losses by 0 and never uses them at inference.

Backbones other than ResNet: PVTv2 (official ``patch_embed1`` / ``block1`` names) and Swin
(original names) are converted with mmdet's own ``pvt_convert`` / ``swin_converter``.
"""
import argparse
import re
from collections import OrderedDict

DROPPED = ('bbox_head.reg_branches2.', 'bbox_head.cls_thing_branches.')

MASK_HEAD_RENAMES = [
    (r'blocks\.(\d+)\.attn\.linear_l(\d)\.', lambda m: f'layers.{m[1]}.cross_attn.level_fcs.'
                                                       f'{int(m[2]) - 1}.'),
    (r'blocks\.(\d+)\.attn\.linear\.', r'layers.\1.cross_attn.fuse.'),
    (r'blocks\.(\d+)\.attn\.', r'layers.\1.cross_attn.'),
    (r'blocks\.(\d+)\.self_attention\.qkv\.(weight|bias)', r'layers.\1.self_attn.in_proj_\2'),
    (r'blocks\.(\d+)\.self_attention\.proj\.', r'layers.\1.self_attn.out_proj.'),
    (r'blocks\.(\d+)\.norm3\.', r'layers.\1.norm_self.'),
    (r'blocks\.(\d+)\.head_norm1\.', r'layers.\1.norm_cross.'),
    (r'blocks\.(\d+)\.head_norm2\.', r'layers.\1.norm_mlp.'),
    (r'blocks\.(\d+)\.mlp\.fc1\.', r'layers.\1.mlp.0.'),
    (r'blocks\.(\d+)\.mlp\.fc2\.', r'layers.\1.mlp.2.'),
    (r'attnen\.linear_l(\d)\.', lambda m: f'mask_head.level_fcs.{int(m[1]) - 1}.'),
    (r'attnen\.linear\.', 'mask_head.fuse.'),
    (r'attnen\.', 'mask_head.'),
]

TRANSFORMER_RENAMES = [
    (r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.attentions\.0\.',
     lambda m: f'{m[1]}.layers.{m[2]}.self_attn.'),
    (r'^bbox_head\.transformer\.decoder\.layers\.(\d+)\.attentions\.1\.',
     r'decoder.layers.\1.cross_attn.'),
    (r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.ffns\.0\.',
     r'\1.layers.\2.ffn.'),
    (r'^bbox_head\.transformer\.(encoder|decoder)\.layers\.(\d+)\.norms\.',
     r'\1.layers.\2.norms.'),
    (r'^bbox_head\.transformer\.level_embeds$', 'level_embed'),
    (r'^bbox_head\.transformer\.reference_points\.', 'reference_points_fc.'),
    (r'^bbox_head\.query_embedding\.', 'query_embedding.'),
    (r'^bbox_head\.cls_stuff_branches\.', 'bbox_head.stuff_cls_branches.'),
]


def _apply(renames, key):
    for pattern, repl in renames:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def convert_head_key(key: str) -> str | None:
    """Our key for an official non-backbone key, or None if the tensor is dropped."""
    if key.startswith(DROPPED):
        return None
    for old, new in (('bbox_head.things_mask_head.', 'bbox_head.thing_mask_decoder.'),
                     ('bbox_head.stuff_mask_head.', 'bbox_head.stuff_mask_decoder.')):
        if key.startswith(old):
            return new + _apply(MASK_HEAD_RENAMES, key[len(old):])
    return _apply(TRANSFORMER_RENAMES, key)


def _convert_backbone(backbone: OrderedDict) -> OrderedDict:
    keys = list(backbone)
    if any(k.startswith('patch_embed1.') for k in keys):
        from mmdet.models.backbones.pvt import pvt_convert
        return pvt_convert(backbone)
    if any(k.startswith('layers.0.blocks.') for k in keys):
        from mmdet.models.backbones.swin import swin_converter
        return swin_converter(backbone)
    return backbone


def convert(state_dict: dict) -> OrderedDict:
    """Official Panoptic SegFormer state dict -> ours."""
    backbone = OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items()
                           if k.startswith('backbone.'))
    out = OrderedDict(('backbone.' + k, v) for k, v in _convert_backbone(backbone).items())
    for key, value in state_dict.items():
        if key.startswith('backbone.'):
            continue
        new = convert_head_key(key)
        if new is not None:
            out[new] = value
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='converted checkpoint (.pth)')
    args = parser.parse_args()
    import torch
    checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    state_dict = checkpoint.get('state_dict', checkpoint)
    torch.save(dict(state_dict=convert(state_dict)), args.dst)
    print(f'converted {len(state_dict)} tensors -> {args.dst}')


if __name__ == '__main__':
    main()
