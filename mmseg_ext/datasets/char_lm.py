"""enwik8 / text8 character-level language modelling data (the standard protocol).

On disk, as written by ``tools/misc/prepare_char_lm_data.py`` from the raw corpus file (the
``*.raw`` files of the Transformer-XL / awd-lstm preparation scripts have the same content)::

    DATA_ROOT/train.raw   first 90,000,000 bytes (text8: characters)
    DATA_ROOT/valid.raw   next 5,000,000
    DATA_ROOT/test.raw    last 5,000,000
"""
import os
import os.path as osp
import zipfile

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.registry import DATASETS
from torch.utils.data import Dataset

#: name -> (corpus bytes, valid bytes, test bytes) of the standard protocol.
CORPORA = {'enwik8': (100_000_000, 5_000_000, 5_000_000),
           'text8': (100_000_000, 5_000_000, 5_000_000)}
CORPUS_SPLITS = ('train', 'valid', 'test')
TEXT8_ALPHABET = b'abcdefghijklmnopqrstuvwxyz '


def read_corpus(path: str) -> bytes:
    """The corpus bytes of a raw file, or of the only member of a ``.zip`` (``enwik8.zip``)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such file (the raw enwik8 / text8 file or its .zip)')
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith('/')]
            if len(names) != 1:
                raise ValueError(f'{path}: expected one file in the archive, found {names}')
            return archive.read(names[0])
    with open(path, 'rb') as f:
        return f.read()


def split_corpus(data: bytes, corpus: str, source: str = '<data>', valid_size: int | None = None,
                 test_size: int | None = None) -> dict[str, bytes]:
    """``train / valid / test`` bytes: the last ``test_size`` bytes are test, the
    ``valid_size`` before them valid, the rest train (defaults: the standard 5M / 5M of a 100M
    corpus, whose size is then checked). text8 must hold only ``a-z`` and spaces."""
    if corpus not in CORPORA:
        raise ValueError(f'unknown corpus {corpus!r}; choose one of {sorted(CORPORA)}')
    total, default_valid, default_test = CORPORA[corpus]
    if valid_size is None and test_size is None and len(data) != total:
        raise ValueError(f'{source}: {len(data):,} bytes, but the {corpus} file has {total:,}; '
                         'pass --valid-size and --test-size to split another corpus')
    valid_size = default_valid if valid_size is None else valid_size
    test_size = default_test if test_size is None else test_size
    if min(valid_size, test_size) < 2 or valid_size + test_size >= len(data) - 1:
        raise ValueError(f'{source}: cannot take valid {valid_size:,} + test {test_size:,} '
                         f'bytes out of {len(data):,}')
    if corpus == 'text8':
        bad = np.flatnonzero(~np.isin(np.frombuffer(data, np.uint8),
                                      np.frombuffer(TEXT8_ALPHABET, np.uint8)))
        if bad.size:
            first = bad[0]
            raise ValueError(f'{source}: byte {data[first:first + 1]!r} at offset {first} is not '
                             'a text8 character (a-z or space); is this the text8 file?')
    cut = len(data) - valid_size - test_size
    return dict(train=data[:cut], valid=data[cut:cut + valid_size], test=data[cut + valid_size:])


def unigram_bpc(train: bytes, other: bytes) -> float:
    """Bits per character of ``other`` under the add-one byte frequencies of ``train``: the
    baseline a model must beat."""
    counts = np.bincount(np.frombuffer(train, np.uint8), minlength=256) + 1.
    log_p = np.log2(counts / counts.sum())
    return float(-log_p[np.frombuffer(other, np.uint8)].mean())


def write_splits(splits: dict[str, bytes], out_dir: str) -> None:
    """Write ``OUT_DIR/{train,valid,test}.raw`` (each written to a temporary name, then
    renamed, so an interrupted run leaves no truncated split)."""
    os.makedirs(out_dir, exist_ok=True)
    for name, data in splits.items():
        path = osp.join(out_dir, f'{name}.raw')
        with open(path + '.tmp', 'wb') as f:
            f.write(data)
        os.replace(path + '.tmp', path)


@DATASETS.register_module()
class CharLMDataset(Dataset):
    """One split as ``num_streams`` contiguous byte streams, cut into blocks (truncated BPTT).

    The split's ``T`` bytes give ``T - 1`` next-byte targets; they are dealt into
    ``S = batch_size x world_size`` streams of ``(T - 1) // S`` targets (at most ``S - 1``
    targets at the very end are left out; with one stream, none). Item ``i`` is block
    ``i // S`` of stream ``i % S``: ``dict(inputs=LongTensor[seq_len + 1], num_targets,
    first, stream)`` -- the block's inputs and targets (a shorter last block is zero-padded and
    ``num_targets`` says how many are real), whether it starts its stream, and the stream id.
    With ``DefaultSampler(shuffle=False)`` and the dataloader's ``batch_size``, every batch is
    the next block of the same ``batch_size`` streams on every rank, so :class:`LSCharLM` can
    carry its memory from one batch to the next; a stream's first block resets it.

    Args:
        data_root: directory with ``train.raw``, ``valid.raw``, ``test.raw``.
        split: ``'train'``, ``'valid'`` or ``'test'``.
        seq_len: tokens per block (the paper: 2048 -> 8192 in training, 256 at test).
        batch_size: streams per process; must equal the dataloader's batch size.
    """

    def __init__(self, data_root: str, split: str = 'train', seq_len: int = 512,
                 batch_size: int = 1):
        if split not in CORPUS_SPLITS:
            raise ValueError(f'split must be one of {CORPUS_SPLITS}, got {split!r}')
        path = osp.join(data_root, f'{split}.raw')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} not found: prepare the corpus with '
                                    'tools/misc/prepare_char_lm_data.py')
        data = np.fromfile(path, dtype=np.uint8)
        streams = batch_size * get_dist_info()[1]
        length = (len(data) - 1) // streams if len(data) else 0
        if length < 1:
            raise ValueError(f'{path} has {len(data)} bytes: too few for {streams} streams')
        self.data = torch.from_numpy(data)
        self.path, self.seq_len, self.num_streams, self.stream_len = path, seq_len, streams, length
        self.num_blocks = -(-length // seq_len)

    def __len__(self) -> int:
        return self.num_blocks * self.num_streams

    def __getitem__(self, index: int) -> dict:
        block, stream = divmod(index, self.num_streams)
        offset = block * self.seq_len
        targets = min(self.seq_len, self.stream_len - offset)
        start = stream * self.stream_len + offset
        inputs = self.data.new_zeros(self.seq_len + 1)
        inputs[:targets + 1] = self.data[start:start + targets + 1]
        return dict(inputs=inputs.long(), num_targets=targets, first=block == 0, stream=stream)
