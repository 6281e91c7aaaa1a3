"""Poisson sampling for DP-SGD: every example joins each batch independently with
probability ``q`` (what the subsampled-Gaussian accountants assume), so batch sizes vary and
may be 0 (Opacus' ``UniformWithReplacementSampler`` / ``DPDataLoader``)."""

import numpy as np

from .. import _C
from ..utils import data as _data

__all__ = ["UniformWithReplacementSampler", "DPDataLoader"]


class UniformWithReplacementSampler(_data.Sampler):
    """Yields ``steps`` batches (default ``round(1/sample_rate)``, one expected epoch) of
    indices into ``range(num_samples)``; each index is in a batch with probability
    ``sample_rate``, independently of the other indices and batches. Draws from deepseek's
    random generator (``deepseek.manual_seed``), or from ``numpy.random.default_rng(seed)``
    when ``seed`` is given."""

    def __init__(self, *, num_samples, sample_rate, steps=None, seed=None):
        if not isinstance(num_samples, int) or num_samples <= 0:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not 0 < sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        self.num_samples, self.sample_rate = num_samples, float(sample_rate)
        self.steps = int(round(1 / self.sample_rate)) if steps is None else int(steps)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self._rng = None if seed is None else np.random.default_rng(seed)

    def __len__(self):
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            if self._rng is not None:
                yield np.flatnonzero(self._rng.random(self.num_samples) < self.sample_rate).tolist()
            else:
                u = _C.rand(self.num_samples)
                yield (u < self.sample_rate).nonzero().reshape(-1).tolist()


def _empty_like_batch(dataset, collate_fn):
    """A batch of zero examples shaped like ``dataset``'s (from collating one example and
    slicing it to length 0)."""
    one = (collate_fn or _data.default_collate)([dataset[0]])

    def cut(x):
        if isinstance(x, _C.Tensor):
            return x[:0]
        if isinstance(x, (tuple, list)):
            return type(x)(cut(v) for v in x)
        if isinstance(x, dict):
            return {k: cut(v) for k, v in x.items()}
        return x
    return cut(one)


class DPDataLoader(_data.DataLoader):
    """A ``DataLoader`` whose batches are Poisson samples of ``dataset`` at rate
    ``sample_rate`` (one pass = ``round(1/sample_rate)`` batches). An empty sample comes out
    as a batch of zero examples with the dataset's shapes (``x.shape[0] == 0``)."""

    def __init__(self, dataset, *, sample_rate, collate_fn=None, seed=None, steps=None):
        sampler = UniformWithReplacementSampler(num_samples=len(dataset),
                                                sample_rate=sample_rate, steps=steps, seed=seed)
        super().__init__(dataset, batch_sampler=sampler, collate_fn=collate_fn)
        self.sample_rate = sampler.sample_rate
        self._user_collate = collate_fn

    @classmethod
    def from_data_loader(cls, data_loader, *, seed=None):
        """The Poisson-sampling twin of ``data_loader``: sample rate ``1/len(data_loader)``
        (its expected batch size is the original ``batch_size``), same dataset and collate."""
        n = len(data_loader)
        if n == 0:
            raise ValueError("the data loader has no batches")
        return cls(data_loader.dataset, sample_rate=1.0 / n,
                   collate_fn=data_loader.collate_fn, seed=seed)

    def __iter__(self):
        for idx in self.batch_sampler:
            if not idx:
                yield _empty_like_batch(self.dataset, self._user_collate)
            else:
                yield _data._fetch(self.dataset, idx, self._user_collate, True)
