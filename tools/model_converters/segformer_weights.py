"""Convert SegFormer weights (official, HF transformers or mmseg 1.x) to mmseg_ext's layout,
or publish ours in HF's format.

    python tools/model_converters/segformer_weights.py SRC DST --from {official,hf,mmseg}
    python tools/model_converters/segformer_weights.py CKPT OUT_DIR --to hf --config CONFIG

SRC is a .pth/.bin/.safetensors file or a directory written by ``save_pretrained``. DST loads
with ``tools/test.py CONFIG DST`` and ``mmseg.apis.init_model``. Keys that cannot be mapped stop
the conversion with their names; keys that are dropped on purpose (the ImageNet classifier
``head.*``, the official model's unused ``decode_head.conv_seg``) are listed.
ImageNet MiT checkpoints (``mit_b*.pth``) need no conversion: ``init_cfg`` loads them as they are.

``--to hf`` writes OUT_DIR for ``SegformerForSemanticSegmentation.from_pretrained``
(config.json with id2label / label2id from the dataset's classes, model.safetensors) from a
checkpoint of CONFIG (MiT backbone, AllMLPHead).
"""
import argparse
import os.path as osp


def read_state_dict(src):
    if osp.isdir(src):
        for name in ('model.safetensors', 'pytorch_model.bin'):
            if osp.isfile(osp.join(src, name)):
                src = osp.join(src, name)
                break
        else:
            raise FileNotFoundError(f'{src} holds neither model.safetensors nor '
                                    'pytorch_model.bin (is it a save_pretrained directory?)')
    if not osp.isfile(src):
        raise FileNotFoundError(f'checkpoint {src!r} does not exist')
    if src.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(src)
    from mmseg_ext.compat import load_checkpoint_file
    checkpoint = load_checkpoint_file(src)
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint, dict) and key in checkpoint:
            return checkpoint[key]
    return checkpoint


def split(state, backbone_prefixes, head_prefix):
    backbone, head, other = {}, {}, []
    for key, value in state.items():
        if key.startswith(head_prefix):
            head[key.removeprefix(head_prefix)] = value
        elif key.startswith(backbone_prefixes):
            backbone[key] = value
        else:
            other.append(key)
    return backbone, head, other


def convert(state, source):
    """Return (converted state dict, list of dropped keys with the reason)."""
    from mmseg_ext.models.backbones.mit import convert_mit_state_dict
    from mmseg_ext.models.decode_heads import convert_hf_head, convert_official_head
    dropped = []
    if source == 'official':
        if not any(k.startswith(('backbone.', 'decode_head.')) for k in state):
            state = {f'backbone.{k}': v for k, v in state.items()}  # ImageNet mit_b*.pth
        backbone, head, other = split(state, 'backbone.', 'decode_head.')
        dropped += [(k, 'ImageNet classifier') for k in backbone if k.startswith('backbone.head.')]
        if 'linear_pred.weight' in head:
            dropped += [(f'decode_head.{k}', 'unused in the official model')
                        for k in head if k.startswith('conv_seg.')]
        head = convert_official_head(head)
    elif source == 'hf':
        backbone, head, other = split(state, 'segformer.', 'decode_head.')
        head = convert_hf_head(head)
    elif source == 'mmseg':
        # mmseg's SegformerHead (BN + ReLU per level) is not the paper's head: it is kept
        # under its own keys, for configs with decode_head=dict(type='SegformerHead', ...).
        backbone, head, other = split(state, 'backbone.', 'decode_head.')
    else:
        raise ValueError(f'--from {source!r}: choose official, hf or mmseg')
    if other:
        raise KeyError(f'keys outside the backbone and decode head: {sorted(other)[:20]}')
    out = {f'backbone.{k}': v for k, v in convert_mit_state_dict(backbone, source).items()}
    out.update({f'decode_head.{k}': v for k, v in head.items()})
    return out, dropped


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='checkpoint file or save_pretrained directory')
    parser.add_argument('dst', help='output .pth (--to hf: output directory)')
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument('--from', dest='source', choices=['official', 'hf', 'mmseg'],
                           help='layout of SRC: the official code, HF transformers or mmseg 1.x')
    direction.add_argument('--to', dest='target', choices=['hf'],
                           help='publish SRC (our checkpoint of --config) in this format')
    parser.add_argument('--config', help='with --to: the config SRC was trained with')
    args = parser.parse_args()
    if args.target:
        if not args.config:
            parser.error('--to hf needs --config (the model\'s architecture and classes)')
        from mmseg_ext.apis import init_segmentor
        from mmseg_ext.models.segformer_hf import save_hf_segformer
        model = init_segmentor(args.config, args.src)
        config = save_hf_segformer(model, args.dst, model.dataset_meta['classes'])
        print(f'wrote {args.dst} (SegformerForSemanticSegmentation, {config.num_labels} labels)')
        return
    from mmseg_ext.compat import save_checkpoint_atomic
    state, dropped = convert(read_state_dict(args.src), args.source)
    for key, why in dropped:
        print(f'dropped {key} ({why})')
    save_checkpoint_atomic(
        dict(state_dict=state, meta=dict(converted_from=args.source, source=args.src)), args.dst)
    print(f'wrote {len(state)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
