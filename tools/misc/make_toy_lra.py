"""Write small synthetic Long Range Arena data (ListOps, Text, Retrieval) in the releases' formats.

    python tools/misc/make_toy_lra.py --out data/toy_lra

Layout under --out, as the LRA configs expect it under data/ (mmseg_ext/models/lra/toy_data.py):
    lra_release/listops-1000/basic_{train,val,test}.tsv
    aclImdb/{train,test}/{pos,neg}/{id}_{rating}.txt
    lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv
It prints each evaluation split's majority-class accuracy (the baseline to beat).
The ListOps defaults make short expressions (depth <= 3, <= 5 arguments) that a small model learns
on a CPU in minutes; --listops-release gives the release's basic task (depth 10, 10 arguments,
lengths 500-2000).
"""
import argparse
import importlib
import os.path as osp
import sys
import types
from pathlib import Path

TASKS = ('listops', 'text', 'retrieval')


def _load_toy_data():
    """Import mmseg_ext/models/lra/toy_data.py (and the listops.py beside it) without the package:
    ``import mmseg_ext`` pulls in the whole OpenMMLab stack, which writing text files does not
    need. The folder is mounted as a bare package, so its ``__init__`` does not run."""
    package = types.ModuleType('mmseg_ext_lra_toy')
    package.__path__ = [str(Path(__file__).resolve().parents[2] / 'mmseg_ext' / 'models' / 'lra')]
    sys.modules[package.__name__] = package
    return importlib.import_module(f'{package.__name__}.toy_data')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/toy_lra', help='output directory')
    parser.add_argument('--tasks', nargs='+', choices=TASKS, default=list(TASKS),
                        help='Long Range Arena tasks to write (default: all)')
    parser.add_argument('--num-train', type=int, default=4000, help='training samples per task')
    parser.add_argument('--num-eval', type=int, default=500,
                        help='samples per evaluation split (val/eval and test)')
    parser.add_argument('--listops-depth', type=int, default=3, help='maximum ListOps tree depth')
    parser.add_argument('--listops-args', type=int, default=5,
                        help='maximum arguments of a ListOps operator')
    parser.add_argument('--listops-length', type=int, nargs=2, default=(2, 60),
                        metavar=('MIN', 'MAX'),
                        help='ListOps length (digits + operators + brackets) strictly between')
    parser.add_argument('--listops-release', action='store_true',
                        help='the release basic task: depth 10, 10 arguments, length 500-2000')
    parser.add_argument('--seed', type=int, default=0, help='seed of the generated samples')
    args = parser.parse_args(argv)
    if min(args.num_train, args.num_eval) < 1:
        parser.error('--num-train and --num-eval must be positive')
    if args.listops_release:
        args.listops_depth, args.listops_args, args.listops_length = 10, 10, (500, 2000)
    return args


def main(argv=None):
    args = parse_args(argv)
    toy_data = _load_toy_data()

    n, m = args.num_train, args.num_eval
    if 'listops' in args.tasks:
        out = osp.join(args.out, 'lra_release', 'listops-1000')
        labels = toy_data.make_listops(
            out, dict(train=n, val=m, test=m), args.seed, args.listops_depth, args.listops_args,
            *args.listops_length)
        report('ListOps', out, labels, 'val', toy_data.majority_accuracy)
    if 'text' in args.tasks:
        out = osp.join(args.out, 'aclImdb')
        labels = toy_data.make_imdb(out, dict(train=n, test=m), args.seed)
        report('Text', out, labels, 'test', toy_data.majority_accuracy)
    if 'retrieval' in args.tasks:
        out = osp.join(args.out, 'lra_release', 'tsv_data')
        labels = toy_data.make_aan(out, dict(train=n, eval=m, test=m), args.seed)
        report('Retrieval', out, labels, 'eval', toy_data.majority_accuracy)


def report(task, out, labels, val_split, majority_accuracy):
    sizes = ' / '.join(f'{len(v)} {k}' for k, v in labels.items())
    baselines = ', '.join(f'{split} {majority_accuracy(labels["train"], labels[split]):.2f}%'
                          for split in dict.fromkeys([val_split, 'test']))
    print(f'{task}: wrote {sizes} to {out}; majority-class accuracy: {baselines}')


if __name__ == '__main__':
    main()
