"""The Long Range Arena text tasks (Tay et al., ICLR 2021), read from the files of their releases.

=========  ===============================================  ==========================  ==========
task       files under ``data_root``                        tokens (0 = padding)        max length
=========  ===============================================  ==========================  ==========
ListOps    ``{task}_{split}.tsv``: header ``Source\\tTarget``  :func:`listops.tokenize`    2000
Text       ``{split}/{neg,pos}/*.txt`` (the aclImdb layout)  bytes + 1                   4000
Retrieval  ``new_aan_pairs.{split}.tsv``, no header:         bytes + 1, each document    4096
           ``label, id1, id2, text1, text2``
=========  ===============================================  ==========================  ==========

As the LRA input pipelines: sequences are cut to the max length; IMDb reviews are stripped of
surrounding white space (as ``tfds``' ``imdb_reviews``), ``neg`` is class 0 and ``pos`` class 1;
the AAN text fields are used as written in the TSV (the release stores them as Python bytes
literals ``b'...'``) and the label column is a number (``1``, ``0.0``). A sample is
``dict(inputs=LongTensor[L] (Retrieval: [2, L]), label=int)``; :func:`lra_collate` pads a batch.
A malformed row, a label outside the classes or an empty file raises ``ValueError`` naming the
file and line.
"""
import glob
import os.path as osp

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.registry import DATASETS, FUNCTIONS
from torch.utils.data import Dataset

from ..toy_data.listops import NUM_CLASSES as LISTOPS_CLASSES
from ..toy_data.listops import tokenize as tokenize_listops


def parse_label(text: bytes, num_classes: int, where: str, column: str) -> int:
    """An integer class in ``0..num_classes - 1`` written as a number (``3``, ``1.0``)."""
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (value.is_integer() and 0 <= value < num_classes):
        raise ValueError(f'{where}: {column} {text.decode(errors="replace")!r} is not a class; '
                         f'expected an integer in 0..{num_classes - 1}')
    return int(value)


def tsv_rows(path: str, columns: tuple[str, ...], header: bool):
    """``(where, fields)`` for each non-blank row of a tab-separated file, fields as bytes.

    ``where`` is ``'path:line'``. With ``header``, the first line must name ``columns`` (in any
    order, among others) and ``fields`` are ordered as ``columns``; without, a row has exactly
    ``len(columns)`` fields.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist')
    order = None if header else list(range(len(columns)))
    num_fields = None if header else len(columns)
    with open(path, 'rb') as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip(b'\r\n')
            if not line:
                continue
            fields = line.split(b'\t')
            if order is None:
                names = [name.decode(errors='replace').strip() for name in fields]
                missing = [c for c in columns if c not in names]
                if missing:
                    raise ValueError(f'{path}:{lineno}: the header {names} lacks the column(s) '
                                     f'{missing}; expected {"<TAB>".join(columns)}')
                order, num_fields = [names.index(c) for c in columns], len(names)
                continue
            if len(fields) != num_fields:
                raise ValueError(f'{path}:{lineno}: expected {num_fields} tab-separated fields '
                                 f'({", ".join(columns)}), got {len(fields)}')
            yield f'{path}:{lineno}', [fields[i] for i in order]


class TokenSequenceDataset(Dataset):
    """Labelled token sequences kept in one flat ``uint8`` array (cheap to share with workers).

    Subclasses call :meth:`store` with ``seqs_per_sample`` sequences per sample; a stored value
    ``t`` is the token id ``t + id_offset``.
    """

    num_classes: int
    seqs_per_sample = 1
    id_offset = 0

    def store(self, seqs: list[np.ndarray], labels: list[int], empty_error: str) -> None:
        if not labels:
            raise ValueError(empty_error)
        self.offsets = np.cumsum([0] + [len(s) for s in seqs])
        self.tokens = np.concatenate(seqs).astype(np.uint8)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def sequence(self, index: int) -> torch.Tensor:
        start, end = self.offsets[index], self.offsets[index + 1]
        return torch.from_numpy(self.tokens[start:end].astype(np.int64)) + self.id_offset

    def __getitem__(self, index: int) -> dict:
        k = self.seqs_per_sample
        seqs = [self.sequence(index * k + i) for i in range(k)]
        inputs = seqs[0] if k == 1 else torch.nn.utils.rnn.pad_sequence(seqs, batch_first=True)
        return dict(inputs=inputs, label=int(self.labels[index]))


@DATASETS.register_module()
class ListOpsDataset(TokenSequenceDataset):
    """LRA ListOps: ``{data_root}/{task}_{split}.tsv`` (``split``: train, val, test)."""

    num_classes = LISTOPS_CLASSES

    def __init__(self, data_root: str, split: str = 'train', task: str = 'basic',
                 max_length: int = 2000, keep_brackets: bool = False):
        path = osp.join(data_root, f'{task}_{split}.tsv')
        seqs, labels = [], []
        for where, (source, target) in tsv_rows(path, ('Source', 'Target'), header=True):
            try:
                ids = tokenize_listops(source.decode(), keep_brackets)[:max_length]
            except (UnicodeDecodeError, ValueError) as err:
                raise ValueError(f'{where}: Source: {err}') from None
            if not ids:
                raise ValueError(f'{where}: empty Source')
            seqs.append(np.asarray(ids, dtype=np.uint8))
            labels.append(parse_label(target, self.num_classes, where, 'Target'))
        self.store(seqs, labels, f'{path} has no samples; expected a header line '
                   '"Source<TAB>Target", then one sample per line')


@DATASETS.register_module()
class IMDbDataset(TokenSequenceDataset):
    """LRA Text: byte-level IMDb reviews in the aclImdb layout ``{data_root}/{split}/{neg,pos}``.

    ``split``: train or test (LRA validates on test: IMDb has no validation split).
    """

    num_classes = 2
    id_offset = 1
    CLASSES = ('neg', 'pos')

    def __init__(self, data_root: str, split: str = 'train', max_length: int = 4000):
        seqs, labels = [], []
        for label, name in enumerate(self.CLASSES):
            folder = osp.join(data_root, split, name)
            if not osp.isdir(folder):
                raise FileNotFoundError(f'{folder} does not exist; expected the aclImdb layout '
                                        f'{data_root}/{split}/{{neg,pos}}/*.txt')
            files = sorted(glob.glob(osp.join(glob.escape(folder), '*.txt')))
            if not files:
                raise ValueError(f'{folder} has no .txt reviews')
            for file in files:
                with open(file, 'rb') as f:
                    text = f.read().strip()
                if not text:
                    raise ValueError(f'{file}: empty review')
                seqs.append(np.frombuffer(text[:max_length], dtype=np.uint8))
                labels.append(label)
        self.store(seqs, labels, f'{osp.join(data_root, split)} has no reviews')


@DATASETS.register_module()
class AANRetrievalDataset(TokenSequenceDataset):
    """LRA Retrieval: document pairs of ``{data_root}/new_aan_pairs.{split}.tsv``; label 1 when
    the first paper cites the second. ``split``: train, eval, test."""

    num_classes = 2
    id_offset = 1
    seqs_per_sample = 2
    COLUMNS = ('label', 'id1', 'id2', 'text1', 'text2')

    def __init__(self, data_root: str, split: str = 'train', max_length: int = 4096):
        path = osp.join(data_root, f'new_aan_pairs.{split}.tsv')
        seqs, labels = [], []
        for where, (label, _, _, text1, text2) in tsv_rows(path, self.COLUMNS, header=False):
            for column, text in (('text1', text1), ('text2', text2)):
                if not text:
                    raise ValueError(f'{where}: empty {column}')
                seqs.append(np.frombuffer(text[:max_length], dtype=np.uint8))
            labels.append(parse_label(label, self.num_classes, where, 'label'))
        self.store(seqs, labels, f'{path} has no samples; expected one line per pair: '
                   f'{"<TAB>".join(self.COLUMNS)}')


@FUNCTIONS.register_module()
def lra_collate(batch: list[dict]) -> dict:
    """Pad the samples' ``inputs`` with 0 to the longest and stack: ``inputs [B, (2,) L]``,
    ``labels [B]``."""
    length = max(sample['inputs'].shape[-1] for sample in batch)
    inputs = torch.stack([F.pad(s['inputs'], (0, length - s['inputs'].shape[-1])) for s in batch])
    return dict(inputs=inputs, labels=torch.tensor([s['label'] for s in batch]))
