"""Write a deterministic raw text corpus of structured pseudo-English for the LS char-LM example.

Sentences come from a small grammar (mmseg_ext/toy_data/text.py), grouped into paragraphs; the
same seed gives the same bytes. Like the raw enwik8 file, it is then split by
tools/misc/prepare_char_lm_data.py:

    python tools/misc/make_toy_text.py --out data/toy_text/toy_text --size 300000
    python tools/misc/prepare_char_lm_data.py data/toy_text/toy_text --corpus enwik8 \
        --valid-size 15000 --test-size 15000 --out data/toy_text
"""
import argparse
from pathlib import Path


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_text/toy_text',
                        help='output file (the char-LM configs read data/toy_text/toy_text)')
    parser.add_argument('--size', type=int, default=300_000, help='bytes (at least)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the grammar sampler')
    args = parser.parse_args()
    from mmseg_ext.toy_data.text import write_text
    size = write_text(args.out, args.size, args.seed)
    print(f'wrote {size} bytes to {Path(args.out)}')


if __name__ == '__main__':
    main()
