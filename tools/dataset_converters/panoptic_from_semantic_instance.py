"""Your panoptic labels (a semantic-label PNG and an instance-id PNG per image, plus a class list
saying which classes are things) -> the COCO panoptic layout mmdet reads.

    python tools/dataset_converters/panoptic_from_semantic_instance.py IMG_DIR SEM_DIR INST_DIR \\
        CLASSES.json OUT_DIR --split train [--img-suffix .jpg] [--sem-suffix .png] \\
        [--inst-suffix .png] [--ignore-index 255]

CLASSES.json: ``[{"name": "road", "isthing": false}, {"name": "car", "isthing": true}, ...]``,
entry i = semantic label i (optional "id" and "color"). Semantic PNG: label per pixel,
``--ignore-index`` = unlabelled. Instance PNG (8/16/32-bit): instance id per pixel, 0 = none; thing
pixels with id 0 become a crowd segment, stuff pixels must be 0. Writes COCO's flat layout:
OUT_DIR/{split}/ (image links), OUT_DIR/annotations/panoptic_{split}.json, panoptic_{split}/ and
instances_{split}.json, and prints the config ``metainfo`` (things first). Logic:
mmseg_ext/datasets/panoptic_conversion.py.
"""
import argparse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('img_dir', help='folder of the images (sub-folders allowed)')
    parser.add_argument('sem_dir', help='semantic PNGs (class index per pixel) named as the images')
    parser.add_argument('inst_dir', help='instance-id PNGs (0 = no instance), named as the images')
    parser.add_argument('classes', help='JSON class list with thing flags')
    parser.add_argument('out_dir', help='output root of the COCO-panoptic layout')
    parser.add_argument('--split', required=True, help='e.g. train or val')
    parser.add_argument('--img-suffix', default='.jpg', help='ending of the image files')
    parser.add_argument('--sem-suffix', default='.png', help='ending of the semantic-label files')
    parser.add_argument('--inst-suffix', default='.png', help='ending of the instance-id files')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='semantic value of unlabelled pixels (left out of every segment)')
    args = parser.parse_args()

    from mmseg_ext.datasets.panoptic_conversion import convert_semantic_instance
    written = convert_semantic_instance(
        args.img_dir, args.sem_dir, args.inst_dir, args.classes, args.out_dir, args.split,
        img_suffix=args.img_suffix, sem_suffix=args.sem_suffix, inst_suffix=args.inst_suffix,
        ignore_index=args.ignore_index)
    for key in ('img_dir', 'panoptic', 'panoptic_dir', 'instances'):
        print(f'{key}: {written[key]}')
    print(f'metainfo = {written["metainfo"]}')


if __name__ == '__main__':
    main()
