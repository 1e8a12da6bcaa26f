"""Write small synthetic Long Range Arena data (ListOps, Text, Retrieval) in the releases' formats.

    python tools/misc/make_toy_lra.py --out data/toy_lra

Layout under --out, as the LRA configs expect it under data/ (mmseg_ext/toy_data/lra.py):
    lra_release/listops-1000/basic_{train,val,test}.tsv
    aclImdb/{train,test}/{pos,neg}/{id}_{rating}.txt
    lra_release/tsv_data/new_aan_pairs.{train,eval,test}.tsv
It prints each evaluation split's majority-class accuracy (the baseline to beat).
The ListOps defaults make short expressions (depth <= 3, <= 5 arguments) that a small model learns
on a CPU in minutes; --listops-release gives the release's basic task (depth 10, 10 arguments,
lengths 500-2000).
"""
import argparse

TASKS = ('listops', 'text', 'retrieval')


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
    from mmseg_ext.toy_data.lra import make_lra
    for line in make_lra(args.out, args.tasks, args.num_train, args.num_eval, args.seed,
                         args.listops_depth, args.listops_args, args.listops_length):
        print(line)


if __name__ == '__main__':
    main()
