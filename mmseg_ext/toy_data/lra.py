"""Small synthetic data in the on-disk formats of the Long Range Arena text tasks.

* ListOps: real expressions (nested MIN / MAX / MED / SM, :mod:`.listops`) in
  the release syntax, label = the expression's value, written as the release does (``csv`` with a
  tab delimiter: header ``Source\\tTarget``, CRLF line ends) to ``{task}_{train,val,test}.tsv``;
  no expression appears twice across the splits.
* Text: reviews built from positive / negative / neutral sentences in the aclImdb layout
  ``{train,test}/{pos,neg}/{id}_{rating}.txt`` (ratings 7-10 positive, 1-4 negative).
* Retrieval: "papers" (title and abstract drawn from one of several topics) in pairs that are
  related (label 1: same topic) or not, as ``new_aan_pairs.{train,eval,test}.tsv`` rows
  ``label, id1, id2, text1, text2`` with the texts written as Python bytes literals, as the release.

The same seed gives the same bytes. Each ``make_*`` returns the labels per split;
:func:`make_lra` writes the tasks in the layout the LRA configs read (tools/misc/make_toy_lra.py).
"""
import csv
import os.path as osp
import random
from collections import Counter
from pathlib import Path

from . import listops

POSITIVE = ['great', 'wonderful', 'moving', 'brilliant', 'funny', 'superb', 'charming', 'fresh']
NEGATIVE = ['awful', 'boring', 'dull', 'clumsy', 'weak', 'painful', 'silly', 'tedious']
SUBJECTS = ['the plot', 'the acting', 'the script', 'the music', 'this film', 'the ending',
            'the cast', 'the director']
NEUTRAL = ['I watched it on a rainy {day}.', 'It runs for about {n} minutes.',
           'My friend recommended it last {day}.', 'The story is set in a small town.',
           'It was released {n} years ago.']
DAYS = ['Monday', 'Friday', 'Sunday', 'weekend']
TOPICS = [
    ['parsing', 'grammar', 'treebank', 'dependency', 'syntax', 'constituent'],
    ['translation', 'alignment', 'phrase', 'bilingual', 'decoder', 'reordering'],
    ['speech', 'acoustic', 'phoneme', 'recognition', 'prosody', 'spoken'],
    ['sentiment', 'opinion', 'review', 'polarity', 'subjective', 'emotion'],
    ['summarization', 'extractive', 'sentence', 'compression', 'redundancy', 'headline'],
    ['semantic', 'role', 'frame', 'predicate', 'argument', 'labeling'],
]
COMMON = ['we', 'propose', 'a', 'model', 'for', 'the', 'task', 'results', 'show', 'improvements',
          'on', 'data', 'method', 'this', 'paper', 'and', 'with', 'our', 'approach']


def majority_accuracy(train_labels: list[int], eval_labels: list[int]) -> float:
    """Accuracy (%) on ``eval_labels`` of always predicting the most frequent training label."""
    majority = Counter(train_labels).most_common(1)[0][0]
    return 100.0 * sum(label == majority for label in eval_labels) / len(eval_labels)


def write_tsv(path: Path, rows: list, header: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f, delimiter='\t', quoting=csv.QUOTE_NONE)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def make_listops(out_dir: str, sizes: dict[str, int], seed: int = 0, max_depth: int = 10,
                 max_args: int = 10, min_length: int = 500, max_length: int = 2000,
                 task: str = 'basic') -> dict[str, list[int]]:
    """``{out_dir}/{task}_{split}.tsv`` for ``split, size in sizes.items()``; the defaults are the
    release's ``basic`` task (a length strictly between ``min_length`` and ``max_length``)."""
    rng = random.Random(seed)
    total, samples, attempts = sum(sizes.values()), {}, 0
    while len(samples) < total:
        attempts += 1
        if attempts > 1000 * total + 10000:
            raise RuntimeError(f'found only {len(samples)} distinct ListOps expressions of '
                               f'length in ({min_length}, {max_length}); ask for fewer samples '
                               'or allow deeper / longer expressions')
        expr, length = listops.random_expression(rng, max_depth, max_args)
        if min_length < length < max_length:
            source = listops.to_source(expr)
            samples.setdefault(source, listops.evaluate(source))
    rows, labels, start = list(samples.items()), {}, 0
    for split, size in sizes.items():
        write_tsv(Path(out_dir) / f'{task}_{split}.tsv', rows[start:start + size],
                  header=['Source', 'Target'])
        labels[split] = [label for _, label in rows[start:start + size]]
        start += size
    return labels


def review(rng: random.Random, positive: bool) -> str:
    sentences = []
    for _ in range(rng.randint(3, 8)):
        if rng.random() < 0.35:
            sentences.append(rng.choice(NEUTRAL).format(day=rng.choice(DAYS),
                                                        n=rng.randint(2, 120)))
            continue
        words = POSITIVE if (rng.random() < 0.8) == positive else NEGATIVE
        sentences.append(f'{rng.choice(SUBJECTS).capitalize()} was {rng.choice(words)}.')
    return ''.join(s + rng.choice([' ', ' ', '<br /><br />']) for s in sentences)


def make_imdb(out_dir: str, sizes: dict[str, int], seed: int = 0) -> dict[str, list[int]]:
    """``{out_dir}/{split}/{neg,pos}/{id}_{rating}.txt``, half of each split positive."""
    rng = random.Random(seed)
    labels = {}
    for split, size in sizes.items():
        labels[split] = [i % 2 for i in range(size)]
        for i, label in enumerate(labels[split]):
            rating = rng.randint(7, 10) if label else rng.randint(1, 4)
            path = Path(out_dir) / split / ('pos' if label else 'neg') / f'{i}_{rating}.txt'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(review(rng, bool(label)))
    return labels


def paper(rng: random.Random, topic: list[str]) -> str:
    title = ' '.join(w.capitalize() for w in rng.sample(topic, 3))
    words = [rng.choice(topic if rng.random() < 0.3 else COMMON)
             for _ in range(rng.randint(40, 90))]
    return f'{title}\nAbstract: {" ".join(words)}.'


def make_aan(out_dir: str, sizes: dict[str, int], seed: int = 0) -> dict[str, list[int]]:
    """``{out_dir}/new_aan_pairs.{split}.tsv``, half of each split related pairs."""
    rng = random.Random(seed)
    labels = {}
    for split, size in sizes.items():
        rows = []
        for i in range(size):
            label = i % 2
            first = rng.randrange(len(TOPICS))
            second = first if label else rng.choice(
                [t for t in range(len(TOPICS)) if t != first])
            ids = [f'{rng.choice("PWCJ")}{rng.randint(0, 12):02d}-{rng.randint(1000, 9999)}'
                   for _ in range(2)]
            texts = [repr(paper(rng, TOPICS[t]).encode()) for t in (first, second)]
            rows.append([label, *ids, *texts])
        write_tsv(Path(out_dir) / f'new_aan_pairs.{split}.tsv', rows)
        labels[split] = [row[0] for row in rows]
    return labels


def make_lra(out: str, tasks, num_train: int, num_eval: int, seed: int = 0,
             listops_depth: int = 3, listops_args: int = 5,
             listops_length: tuple[int, int] = (2, 60)) -> list[str]:
    """Write ``tasks`` (of 'listops', 'text', 'retrieval') under ``out`` as the LRA configs
    expect them under data/; returns one line per task: sizes and each evaluation split's
    majority-class accuracy (the baseline to beat)."""
    n, m = num_train, num_eval
    lines = []
    if 'listops' in tasks:
        path = osp.join(out, 'lra_release', 'listops-1000')
        labels = make_listops(path, dict(train=n, val=m, test=m), seed, listops_depth,
                              listops_args, *listops_length)
        lines.append(_summary('ListOps', path, labels, 'val'))
    if 'text' in tasks:
        path = osp.join(out, 'aclImdb')
        labels = make_imdb(path, dict(train=n, test=m), seed)
        lines.append(_summary('Text', path, labels, 'test'))
    if 'retrieval' in tasks:
        path = osp.join(out, 'lra_release', 'tsv_data')
        labels = make_aan(path, dict(train=n, eval=m, test=m), seed)
        lines.append(_summary('Retrieval', path, labels, 'eval'))
    return lines


def _summary(task, out, labels, val_split):
    sizes = ' / '.join(f'{len(v)} {k}' for k, v in labels.items())
    baselines = ', '.join(f'{split} {majority_accuracy(labels["train"], labels[split]):.2f}%'
                          for split in dict.fromkeys([val_split, 'test']))
    return f'{task}: wrote {sizes} to {out}; majority-class accuracy: {baselines}'
