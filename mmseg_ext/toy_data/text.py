"""A deterministic raw text corpus of structured pseudo-English for the LS char-LM example
(``tools/misc/make_toy_text.py``).

Sentences come from a small grammar (subject, verb, object, optional prepositional phrase and
relative clause) over a fixed vocabulary, grouped into paragraphs; the same seed gives the same
bytes. Like the raw enwik8 file, it is then split by tools/misc/prepare_char_lm_data.py.
"""
import random
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


def write_text(out: str, size: int = 300_000, seed: int = 0) -> int:
    """Write :func:`make_text` to the file ``out`` (folders made); returns its size in bytes."""
    data = make_text(size, seed).encode()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return len(data)
