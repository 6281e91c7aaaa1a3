"""``DistributedDataParallel`` and ``DistributedSampler`` (torch's spelling)."""

import contextlib

from .. import _C
from ..nn.module import Module
from ..utils.data import Sampler

_D = _C.distributed


class DistributedDataParallel(Module):
    """Replicates ``module`` on every rank: parameters and buffers are broadcast from the
    group's first rank, and gradients are averaged across ranks during backward, in buckets
    of about ``bucket_cap_mb`` (the reducer in Rust; gradient hooks, no Python per
    parameter). ``no_sync()`` accumulates gradients locally; the next synchronised backward
    averages the accumulated sum. Every parameter that requires grad must take part in the
    loss (``find_unused_parameters=True`` is refused)."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters=False, gradient_as_bucket_view=False,
                 static_graph=False):
        super().__init__()
        if find_unused_parameters:
            raise ValueError("DistributedDataParallel: find_unused_parameters=True is not "
                             "supported; every parameter must take part in the loss")
        self.module = module
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        buffers = [b for _, b in module.named_buffers()] if broadcast_buffers else []
        self.process_group = process_group
        self._reducer = _D.Reducer([p for _, p in named], [n for n, _ in named], buffers,
                                   process_group, 25.0 if bucket_cap_mb is None
                                   else float(bucket_cap_mb))

    def forward(self, *args, **kwargs):
        if self._reducer.is_sync():
            self._reducer.check_finished()
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients of backward passes inside stay local (accumulate without communication)."""
        prev = self._reducer.is_sync()
        self._reducer.set_sync(False)
        try:
            yield
        finally:
            self._reducer.set_sync(prev)

    @property
    def num_buckets(self):
        return self._reducer.num_buckets


class DistributedSampler(Sampler):
    """This rank's share of a dataset's indices: the (optionally shuffled, seeded by
    ``seed + epoch``) order padded to a multiple of ``num_replicas`` (or trimmed with
    ``drop_last``), then every ``num_replicas``-th index from ``rank``."""

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        from . import get_rank, get_world_size
        if num_replicas is None:
            num_replicas = get_world_size()
        if rank is None:
            rank = get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        n = len(dataset)
        self.num_samples = n // num_replicas if drop_last else -(-n // num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        return iter(_D.sampler_indices(len(self.dataset), self.num_replicas, self.rank,
                                       self.shuffle, self.seed, self.epoch, self.drop_last))

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = int(epoch)
