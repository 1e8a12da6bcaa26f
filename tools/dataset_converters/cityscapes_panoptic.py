"""Cityscapes panoptic for mmdet, made by cityscapesscripts' own createPanopticImgs.

    python tools/dataset_converters/cityscapes_panoptic.py data/cityscapes [--splits train val]

ROOT holds leftImg8bit/{split}/CITY/*_leftImg8bit.png and gtFine/{split}/CITY/
*_gtFine_instanceIds.png. Writes gtFine/cityscapes_panoptic_{split}.json + PNGs
(createPanopticImgs), then ROOT/mmdet_panoptic/ in COCO's flat layout ({split}/ image links,
annotations/panoptic_{split}.json + PNG folder, annotations/instances_{split}.json), which
configs/panoptic_segformer/panoptic-segformer_r50_cityscapes-panoptic.py reads (see
mmseg_ext/datasets/cityscapes_panoptic.py).
"""
import argparse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='Cityscapes root (leftImg8bit/, gtFine/)')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        help='Cityscapes splits to convert')
    args = parser.parse_args()

    from mmseg_ext.datasets.cityscapes_panoptic import prepare_cityscapes_panoptic
    written = prepare_cityscapes_panoptic(args.root, args.splits)
    for split, paths in written.items():
        print(f'{split}: {paths["img_dir"]}, {paths["panoptic"]}, {paths["panoptic_dir"]}, '
              f'{paths["instances"]}')


if __name__ == '__main__':
    main()
