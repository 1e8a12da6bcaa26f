"""The official Cityscapes pixel-level evaluation, on numpy >= 2.4 (this environment).

cityscapesscripts' own command, ``csEvalPixelLevelSemanticLabeling``, fails here on its
``np.in1d`` call; this wrapper applies mmseg_ext's fix and runs the same evaluation.

    python tools/misc/cityscapes_eval.py --dataset data/cityscapes --results PRED_DIR
        [--split val] [--export-dir DIR]

Scores every ``gtFine/SPLIT/*/*_gtFine_labelIds.png`` under --dataset against the prediction
matching ``CITY_SEQ_FRAME*.png`` under --results, read as Cityscapes label ids: the
``*_labelIds.png`` of ``tools/test.py --out`` or the results of ``--cityscapes-out``. Prints the
official tables and writes resultPixelLevelSemanticLabeling.json (to --export-dir, else
DATASET/evaluationResults/). Left out, --dataset / --results / --export-dir follow the official
environment variables CITYSCAPES_DATASET / CITYSCAPES_RESULTS / CITYSCAPES_EXPORT_DIR.
"""
import argparse


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--dataset', help='Cityscapes root, the folder holding gtFine/')
    parser.add_argument('--results', help='folder of predicted label-id maps')
    parser.add_argument('--split', default='val', help='gtFine split to score (default val)')
    parser.add_argument('--export-dir', help='where resultPixelLevelSemanticLabeling.json goes')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmseg_ext  # noqa: F401  (applies the numpy fix)
    from mmseg_ext.compat.cityscapes import official_pixel_evaluation
    official_pixel_evaluation(args.dataset, args.results, args.export_dir, args.split)


if __name__ == '__main__':
    main()
