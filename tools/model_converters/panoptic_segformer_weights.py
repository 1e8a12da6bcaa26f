"""Convert an official Panoptic SegFormer checkpoint (mmdet 2.x, zhiqi-li/Panoptic-SegFormer) to
this project's mmdet 3.x layout.

    python tools/model_converters/panoptic_segformer_weights.py SRC.pth DST.pth

R50 / R101, PVTv2-B5 and Swin-L checkpoints are recognised by their backbone keys. The key
mapping is in mmseg_ext/models/panoptic/convert.py; the official head's unused ``reg_branches2``
and ``cls_thing_branches`` are dropped (and listed); any other key without a counterpart stops
the conversion with its name.
"""
import argparse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='converted checkpoint (.pth)')
    args = parser.parse_args()

    from mmseg_ext.compat import load_checkpoint_file, save_checkpoint_atomic
    from mmseg_ext.models.panoptic.convert import convert_panoptic_segformer
    checkpoint = load_checkpoint_file(args.src)
    state_dict = checkpoint.get('state_dict', checkpoint)
    converted, dropped = convert_panoptic_segformer(state_dict)
    for key, why in dropped:
        print(f'dropped {key}: {why}')
    save_checkpoint_atomic(dict(state_dict=converted, meta=dict(converted_from=args.src)),
                           args.dst)
    print(f'converted {len(state_dict)} tensors -> {len(converted)} in {args.dst}')


if __name__ == '__main__':
    main()
