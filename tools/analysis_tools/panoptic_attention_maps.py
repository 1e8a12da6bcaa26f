"""Write Panoptic SegFormer mask-decoder attention maps (the masks each attention-to-mask stage
predicts, paper Fig. 4 / Sec. 3.4) for chosen queries as PNG overlays.

    python tools/analysis_tools/panoptic_attention_maps.py CONFIG CKPT IMG \
        --queries t0 t1 s:road s2 --out-dir work_dirs/attn

Query tokens: ``t<k>`` is the k-th best thing (query, class) pair of the location decoder,
``s<k>`` the stuff query of stuff class k, ``s:<name>`` the stuff query of that class. Without
``--queries`` the three best things and every stuff class are written. One PNG per query and
mask-decoder stage: ``<token>_layer<j>.png`` (the last stage is the final mask).
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='Panoptic SegFormer config file')
    parser.add_argument('checkpoint', help='checkpoint matching the config')
    parser.add_argument('img', help='image file')
    parser.add_argument('--queries', nargs='+', help='t<k>, s<k> or s:<stuff name>')
    parser.add_argument('--out-dir', default='work_dirs/panoptic_attention_maps',
                        help='one PNG per query and mask stage is written here')
    parser.add_argument('--device', default='cpu', help='torch device, e.g. cpu or cuda:0')
    parser.add_argument('--alpha', type=float, default=0.5, help='heat-map opacity')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmseg_ext  # noqa: F401  (first: its compat fixes let mmseg / mmdet import)

    # isort: split
    from mmseg_ext.apis.panoptic_attention_maps import write_attention_maps
    write_attention_maps(args.config, args.checkpoint, args.img, args.queries, args.out_dir,
                         args.device, args.alpha)


if __name__ == '__main__':
    main()
