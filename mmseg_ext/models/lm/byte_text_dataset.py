"""Raw bytes of a text file as next-byte prediction windows (enwik8 style)."""
import math

import numpy as np
import torch
from mmengine.registry import DATASETS
from torch.utils.data import Dataset


@DATASETS.register_module()
class ByteTextDataset(Dataset):
    """Windows of ``seq_len + 1`` bytes from one split of a text file.

    The file is read as raw bytes (vocabulary 256) and split by byte offset: the first
    ``1 - val_fraction`` of the bytes are ``'train'``, the rest ``'val'``. Window ``i`` starts at
    byte ``i * stride``; a sample is ``dict(inputs=LongTensor[seq_len + 1])`` whose first
    ``seq_len`` bytes are the context and last ``seq_len`` bytes the targets.
    """

    def __init__(self, data_file: str, split: str = 'train', val_fraction: float = 0.1,
                 seq_len: int = 256, stride: int | None = None):
        if split not in ('train', 'val'):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        data = np.fromfile(data_file, dtype=np.uint8)
        cut = int(round(len(data) * (1 - val_fraction)))
        self.data = torch.from_numpy(data[:cut] if split == 'train' else data[cut:].copy())
        self.seq_len, self.stride = seq_len, stride or seq_len
        self.num_windows = max(0, math.floor((len(self.data) - seq_len - 1) / self.stride) + 1)
        if self.num_windows == 0:
            raise ValueError(f'{split} split of {data_file} has fewer than {seq_len + 1} bytes')

    def __len__(self) -> int:
        return self.num_windows

    def __getitem__(self, index: int) -> dict:
        start = index * self.stride
        return dict(inputs=self.data[start:start + self.seq_len + 1].long())
