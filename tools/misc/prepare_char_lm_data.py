"""Split the raw enwik8 / text8 file into the layout CharLMDataset reads.

    python tools/misc/prepare_char_lm_data.py enwik8 --corpus enwik8 --out data/enwik8
    python tools/misc/prepare_char_lm_data.py text8.zip --corpus text8 --out data/text8

SRC is the raw 100,000,000-byte file (or its .zip). Writes OUT/train.raw (first 90M bytes),
OUT/valid.raw (next 5M) and OUT/test.raw (last 5M), the standard split (Transformer-XL, the
Transformer-LS paper), and prints the unigram baseline in bits per character. --valid-size and
--test-size split another corpus (e.g. the toy text of tools/misc/make_toy_text.py).
"""
import argparse


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='the raw corpus file (enwik8, text8) or its .zip')
    parser.add_argument('--corpus', choices=['enwik8', 'text8'], required=True,
                        help='which corpus SRC is (sets the split sizes and checks)')
    parser.add_argument('--out', required=True, help='output directory')
    parser.add_argument('--valid-size', type=int, help='bytes (default: 5,000,000)')
    parser.add_argument('--test-size', type=int, help='bytes (default: 5,000,000)')
    return parser.parse_args()


def main():
    args = parse_args()
    from mmseg_ext.datasets.char_lm import read_corpus, split_corpus, unigram_bpc, write_splits
    splits = split_corpus(read_corpus(args.src), args.corpus, args.src, args.valid_size,
                          args.test_size)
    write_splits(splits, args.out)
    for name, data in splits.items():
        print(f'{args.out}/{name}.raw: {len(data):,} bytes')
    print('unigram baseline (train byte frequencies): valid '
          f'{unigram_bpc(splits["train"], splits["valid"]):.3f}, test '
          f'{unigram_bpc(splits["train"], splits["test"]):.3f} bits/char')


if __name__ == '__main__':
    main()
