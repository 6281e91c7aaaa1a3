"""Datasets for test_dataloader_workers.py (importable, so spawned workers can unpickle them)."""

import os

import deepseek as ds
from deepseek.utils.data import Dataset, get_worker_info


class Squares(Dataset):
    def __init__(self, n, fail_at=None):
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"bad index {i}")
        info = get_worker_info()
        return ds.tensor([float(i * i)]), ds.tensor(info.id if info else -1), os.getpid()
