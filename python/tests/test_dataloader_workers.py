"""DataLoader(num_workers > 0): real worker processes, batches in order, errors re-raised."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from dl_workers_dataset import Squares  # noqa: E402

from deepseek.utils.data import DataLoader, get_worker_info  # noqa: E402


def test_workers_give_the_same_batches_in_order():
    ds_ = Squares(23)
    plain = [b[0].tolist() for b in DataLoader(ds_, batch_size=4)]
    got = list(DataLoader(ds_, batch_size=4, num_workers=2, prefetch_factor=1))
    assert [b[0].tolist() for b in got] == plain
    pids = {p for b in got for p in b[2].tolist()}
    wids = {w for b in got for w in b[1].tolist()}
    assert os.getpid() not in pids and len(pids) == 2 and wids == {0, 1}
    assert get_worker_info() is None


def test_worker_errors_and_early_exit():
    with pytest.raises(KeyError, match="bad index 5"):
        list(DataLoader(Squares(10, fail_at=5), batch_size=2, num_workers=2))
    it = iter(DataLoader(Squares(100), batch_size=2, num_workers=2))
    next(it)
    it.close()  # stops and joins the workers
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Squares(3), num_workers=-1)
