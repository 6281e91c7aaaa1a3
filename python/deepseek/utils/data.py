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
    perm = _C.randperm(n, generator=generator).tolist()
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
    ``generator`` (a ``deepseek.Generator``) or deepseek's global generator."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = num_samples
        self.generator = generator

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        if self.replacement:
            return iter(_C.randint(0, n, (self.num_samples,), generator=self.generator).tolist())
        perm = []
        while len(perm) < self.num_samples:
            perm += _C.randperm(n, generator=self.generator).tolist()
        return iter(perm[:self.num_samples])

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order each epoch (from ``generator`` when given)."""

    def __init__(self, indices, generator=None):
        self.indices = list(indices)
        self.generator = generator

    def __iter__(self):
        perm = _C.randperm(len(self.indices), generator=self.generator).tolist()
        return iter([self.indices[i] for i in perm])

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


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a DataLoader worker process."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed})"


_worker_info = None


def get_worker_info():
    """In a DataLoader worker process: its ``WorkerInfo`` (``id``, ``num_workers``,
    ``seed``, ``dataset``, the worker's copy); in the main process: None."""
    return _worker_info


def _fetch(dataset, batch, collate_fn, batched):
    if not batched:
        item = dataset[batch[0]]
        return collate_fn([item])[0] if collate_fn else item
    if isinstance(dataset, TensorDataset) and collate_fn is None:
        ix = _C.tensor(batch, dtype=_C.int64)
        return tuple(t.index_select(0, ix) for t in dataset.tensors)
    return (collate_fn or default_collate)([dataset[i] for i in batch])


def _worker_loop(dataset, collate_fn, batched, index_q, result_q, worker_id, num_workers,
                 seed, worker_init_fn):
    import traceback

    global _worker_info
    try:
        _C.set_num_threads(1)
        _C.manual_seed(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception as e:  # noqa: BLE001  (reported to the main process)
        result_q.put((-1, None, (type(e), f"in DataLoader worker {worker_id} start-up:\n"
                                 + traceback.format_exc())))
        return
    while True:
        job = index_q.get()
        if job is None:
            return
        i, batch = job
        try:
            result_q.put((i, _fetch(dataset, batch, collate_fn, batched), None))
        except Exception as e:  # noqa: BLE001
            result_q.put((i, None, (type(e), f"in DataLoader worker {worker_id}:\n"
                                    + traceback.format_exc())))


class DataLoader:
    """Iterates over ``dataset`` in batches. A ``TensorDataset`` with the default collate is
    batched with one ``index_select`` per tensor (no per-sample Python work).

    ``num_workers > 0`` loads batches in that many worker processes (started with the
    ``spawn`` method unless ``multiprocessing_context`` says otherwise, since a forked child
    cannot use the parent's compute threads; so the dataset and ``collate_fn`` must be
    picklable and the program's entry point guarded by ``if __name__ == "__main__"``, as
    PyTorch requires on macOS/Windows). Batches arrive in order; each worker keeps
    ``prefetch_factor`` (default 2) batches in flight, runs ``worker_init_fn(worker_id)``
    first, is seeded with ``base_seed + worker_id`` and sees ``get_worker_info()``. An
    exception in a worker is re-raised in the main process with the worker's traceback; a
    worker that dies raises ``RuntimeError``; ``timeout`` (seconds) bounds each wait."""

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device=""):
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
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 "
                             "to disable multiprocessing.")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in "
                             "multiprocessing. let num_workers > 0 to enable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = 2 if prefetch_factor is None else prefetch_factor
        self.persistent_workers = persistent_workers
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator

    def _indices(self):
        n = len(self.dataset)
        if self.sampler is not None:
            return list(iter(self.sampler))
        if self.shuffle:
            return _C.randperm(n, generator=self.generator).tolist()
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
        batched = self.batch_size is not None or self.batch_sampler is not None
        if self.num_workers > 0:
            yield from self._iter_workers(batched)
            return
        for b in self._batches():
            yield _fetch(self.dataset, b, self.collate_fn, batched)

    def _iter_workers(self, batched):
        import multiprocessing as mp
        import queue

        ctx = self.multiprocessing_context or "spawn"
        if isinstance(ctx, str):
            ctx = mp.get_context(ctx)
        base_seed = int(_C.randint(0, 2 ** 62, (1,), generator=self.generator).item())
        result_q = ctx.Queue()
        index_qs, workers = [], []
        try:
            for w in range(self.num_workers):
                iq = ctx.Queue()
                p = ctx.Process(target=_worker_loop, daemon=True, args=(
                    self.dataset, self.collate_fn, batched, iq, result_q, w, self.num_workers,
                    base_seed + w, self.worker_init_fn))
                p.start()
                index_qs.append(iq)
                workers.append(p)
            batches = iter(enumerate(self._batches()))
            sent = 0

            def send():
                nonlocal sent
                job = next(batches, None)
                if job is None:
                    return False
                index_qs[job[0] % self.num_workers].put(job)
                sent += 1
                return True

            for _ in range(self.prefetch_factor * self.num_workers):
                if not send():
                    break
            ready, nxt = {}, 0
            while nxt < sent:
                while nxt not in ready:
                    waited = 0.0
                    while True:
                        try:
                            i, data, err = result_q.get(timeout=1.0)
                            break
                        except queue.Empty:
                            waited += 1.0
                            dead = [p for p in workers if not p.is_alive()]
                            if dead:
                                raise RuntimeError(
                                    f"DataLoader worker (pid {dead[0].pid}) exited "
                                    f"unexpectedly with exit code {dead[0].exitcode}") from None
                            if self.timeout and waited >= self.timeout:
                                raise RuntimeError(f"DataLoader timed out after "
                                                   f"{self.timeout} seconds") from None
                    if err is not None:
                        etype, tb = err
                        try:
                            exc = etype(f"Caught {etype.__name__} {tb}")
                        except Exception:  # noqa: BLE001  (a type that wants other args)
                            exc = RuntimeError(f"Caught {etype.__name__} {tb}")
                        raise exc
                    ready[i] = data
                data = ready.pop(nxt)
                nxt += 1
                send()
                yield data
        finally:
            for iq in index_qs:
                try:
                    iq.put(None)
                except (OSError, ValueError):
                    pass
            for p in workers:
                p.join(timeout=5)
                if p.is_alive():
                    p.terminate()
                    p.join(timeout=5)
            for q in index_qs + [result_q]:
                q.close()
                q.cancel_join_thread()

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        bs = self.batch_size or 1
        return n // bs if self.drop_last else (n + bs - 1) // bs
