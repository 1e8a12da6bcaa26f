"""Write a deterministic text file of structured pseudo-English for the LS char-LM example.

Sentences come from a small grammar (subject, verb, object, optional prepositional phrase and
relative clause) over a fixed vocabulary, grouped into paragraphs; the same seed gives the same
bytes. It also prints the unigram baseline: the cross-entropy, in bits per character, of the
validation bytes under the byte frequencies of the training bytes (split as ByteTextDataset).

    python tools/misc/make_toy_text.py --out data/toy_text/toy_text.txt --size 300000
"""
import argparse
import math
import random
from collections import Counter
from pathlib import Path

DETERMINERS = ['the', 'a', 'every', 'some', 'this', 'that']
ADJECTIVES = ['small', 'green', 'quiet', 'old', 'bright', 'heavy', 'clever', 'cold', 'round',
              'busy', 'gentle', 'strange']
NOUNS = ['river', 'teacher', 'machine', 'garden', 'window', 'farmer', 'engine', 'city', 'letter',
         'mountain', 'student', 'bridge', 'kettle', 'painter', 'forest', 'signal']
VERBS = ['watches', 'builds', 'follows', 'carries', 'finds', 'remembers', 'paints', 'moves',
         'answers', 'repairs', 'crosses', 'opens']
PREPOSITIONS = ['near', 'under', 'behind', 'above', 'beside', 'across']
ADVERBS = ['slowly', 'quickly', 'again', 'today', 'quietly']


def noun_phrase(rng: random.Random) -> str:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.6:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(NOUNS))
    return ' '.join(words)


def sentence(rng: random.Random) -> str:
    parts = [noun_phrase(rng)]
    if rng.random() < 0.25:
        parts.append(f'that {rng.choice(VERBS)} {noun_phrase(rng)}')
    parts += [rng.choice(VERBS), noun_phrase(rng)]
    if rng.random() < 0.5:
        parts.append(f'{rng.choice(PREPOSITIONS)} {noun_phrase(rng)}')
    if rng.random() < 0.3:
        parts.append(rng.choice(ADVERBS))
    text = ' '.join(parts)
    return text[0].upper() + text[1:] + rng.choice(['.', '.', '.', '!', '?'])


def make_text(size: int, seed: int = 0) -> str:
    """At least ``size`` bytes of paragraphs (3-6 sentences each), cut at a paragraph end."""
    rng = random.Random(seed)
    paragraphs, length = [], 0
    while length < size:
        paragraphs.append(' '.join(sentence(rng) for _ in range(rng.randint(3, 6))) + '\n')
        length += len(paragraphs[-1])
    return ''.join(paragraphs)


def unigram_bpc(data: bytes, val_fraction: float = 0.1) -> float:
    """Bits per char of the validation bytes under the (add-one) train byte frequencies."""
    cut = int(round(len(data) * (1 - val_fraction)))
    counts = Counter(data[:cut])
    total = cut + 256
    val = data[cut:]
    return -sum(math.log2((counts[b] + 1) / total) for b in val) / len(val)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='data/toy_text/toy_text.txt', help='output text file')
    parser.add_argument('--size', type=int, default=300_000, help='bytes (at least)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the grammar sampler')
    parser.add_argument('--val-fraction', type=float, default=0.1,
                        help='last fraction of the bytes used for the unigram baseline (val split)')
    args = parser.parse_args()
    data = make_text(args.size, args.seed).encode()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f'wrote {len(data)} bytes to {out}; unigram baseline on the val split: '
          f'{unigram_bpc(data, args.val_fraction):.3f} bits/char')


if __name__ == '__main__':
    main()
