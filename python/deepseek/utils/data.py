"""``deepseek.utils.data``: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``
and ``DataLoader`` (batch_size, shuffle, drop_last, collate_fn). Shuffling draws from
deepseek's generator, so ``deepseek.manual_seed`` makes epochs reproducible."""

import math

from .. import _C


class Dataset:
    """Map-style dataset: ``__getitem__(i)`` and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the i-th rows of each tensor (which share their first dimension)."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        n = tensors[0].shape[0] if tensors[0].dim() else None
        for t in tensors:
            if not isinstance(t, _C.Tensor):
                raise TypeError(f"TensorDataset takes tensors, got {type(t).__name__}")
            if t.dim() == 0 or t.shape[0] != n:
                raise ValueError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.cumulative = []
        s = 0
        for d in self.datasets:
            s += len(d)
            self.cumulative.append(s)

    def __len__(self):
        return self.cumulative[-1] if self.cumulative else 0

    def __getitem__(self, i):
        if i < 0:
            i += len(self)
        for k, end in enumerate(self.cumulative):
            if i < end:
                start = self.cumulative[k - 1] if k else 0
                return self.datasets[k][i - start]
        raise IndexError("index out of range")


def random_split(dataset, lengths, generator=None):
    """Splits into non-overlapping subsets of the given lengths (or fractions)."""
    n = len(dataset)
    if all(isinstance(x, float) and 0 <= x <= 1 for x in lengths) and abs(sum(lengths) - 1) < 1e-6:
        sizes = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    perm = _C.randperm(n).tolist()
    out, off = [], 0
    for L in lengths:
        out.append(Subset(dataset, perm[off:off + L]))
        off += L
    return out


class Sampler:
    """Base class of index samplers (``__iter__`` over dataset indices, ``__len__``)."""

    def __init__(self, data_source=None):
        pass


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation per epoch (or ``num_samples`` draws with replacement), from
    deepseek's generator."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = num_samples

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:
            return iter(_C.randint(0, n, (self.num_samples,)).tolist())
        perm = []
        while len(perm) < self.num_samples:
            perm += _C.randperm(n).tolist()
        return iter(perm[:self.num_samples])

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    def __init__(self, indices, generator=None):
        self.indices = list(indices)

    def __iter__(self):
        return iter([self.indices[i] for i in _C.randperm(len(self.indices)).tolist()])

    def __len__(self):
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self):
        batch = []
        for i in self.sampler:
            batch.append(i)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size


def default_collate(batch):
    """Stacks tensors, turns numbers into tensors, recurses into tuples/lists/dicts."""
    first = batch[0]
    if isinstance(first, _C.Tensor):
        return _C.stack(list(batch), 0)
    if isinstance(first, bool):
        return _C.tensor(list(batch), dtype=_C.bool)
    if isinstance(first, int):
        return _C.tensor(list(batch), dtype=_C.int64)
    if isinstance(first, float):
        return _C.tensor(list(batch), dtype=_C.float32)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        cols = list(zip(*batch))
        res = [default_collate(list(c)) for c in cols]
        return tuple(res) if isinstance(first, tuple) else res
    if hasattr(first, "__array_interface__"):
        return _C.stack([_C.from_numpy(b) for b in batch], 0)
    raise TypeError(f"default_collate: batch must contain tensors, numbers, dicts or lists; "
                    f"found {type(first).__name__}")


class DataLoader:
    """Iterates over ``dataset`` in batches. A ``TensorDataset`` with the default collate is
    batched with one ``index_select`` per tensor (no per-sample Python work)."""

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers=False):
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.drop_last = drop_last

    def _indices(self):
        n = len(self.dataset)
        if self.sampler is not None:
            return list(iter(self.sampler))
        if self.shuffle:
            return _C.randperm(n).tolist()
        return list(range(n))

    def _batches(self):
        if self.batch_sampler is not None:
            yield from self.batch_sampler
            return
        idx = self._indices()
        bs = self.batch_size or 1
        for i in range(0, len(idx), bs):
            b = idx[i:i + bs]
            if len(b) < bs and self.drop_last:
                return
            yield b

    def __iter__(self):
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for b in self._batches():
            if fast:
                ix = _C.tensor(b, dtype=_C.int64)
                yield tuple(t.index_select(0, ix) for t in self.dataset.tensors)
            elif self.batch_size is None:
                item = self.dataset[b[0]]
                yield self.collate_fn([item])[0] if self.collate_fn else item
            else:
                items = [self.dataset[i] for i in b]
                yield (self.collate_fn or default_collate)(items)

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        bs = self.batch_size or 1
        return n // bs if self.drop_last else (n + bs - 1) // bs
