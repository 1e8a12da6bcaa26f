"""Convert an official ViL-LS ImageNet checkpoint (NVIDIA/transformer-ls ``imagenet/``,
``model_best.pth``) to an mmpretrain ImageClassifier checkpoint for configs/ls_transformer/vil-ls-*.

    python tools/model_converters/ls_transformer_weights.py model_best.pth vil-ls-medium.pth
    python tools/test.py configs/ls_transformer/vil-ls-medium_in1k.py vil-ls-medium.pth

The official file holds the DDP model's weights under ``net`` (``module.`` prefixes). Keys that
cannot be mapped stop the conversion with their names. No CvT*-LS code or checkpoint was released,
so there is nothing to convert for CvT*-LS.
"""
import argparse
import os.path as osp


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='official checkpoint (model_best.pth)')
    parser.add_argument('dst', help='output .pth')
    args = parser.parse_args()
    from mmseg_ext.compat import load_checkpoint_file, save_checkpoint_atomic
    from mmseg_ext.models.backbones.vil_ls import convert_official_vil_ls
    if not osp.isfile(args.src):
        raise FileNotFoundError(f'checkpoint {args.src!r} does not exist')
    checkpoint = load_checkpoint_file(args.src)
    state = convert_official_vil_ls(checkpoint.get('net', checkpoint))
    save_checkpoint_atomic(dict(state_dict=state, meta=dict(converted_from='official ViL-LS',
                                                            source=args.src)), args.dst)
    print(f'wrote {len(state)} tensors to {args.dst}')


if __name__ == '__main__':
    main()
