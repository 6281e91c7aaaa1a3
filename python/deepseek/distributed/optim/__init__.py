"""``deepseek.distributed.optim``: ``ZeroRedundancyOptimizer`` (ZeRO stage 1), the optimizer
state sharded across the data-parallel ranks, with torch's spelling.

The parameters are laid end to end in one flat vector (padded to a multiple of the group
size) and rank ``r`` owns the ``r``-th equal slice. ``step()`` reduce-scatters (averages)
the gradients, so each rank receives the averaged gradient of its slice only; runs the inner
optimizer (``optimizer_class``) on that slice, so its state (Adam's moments) covers ``1/N``
of the model per rank; and all-gathers the updated slices into every parameter. The
averaging makes it a complete data-parallel step (no DDP needed; after DDP it changes
nothing). Element-wise optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, ...) give exactly the
unsharded result. The Rust twin is ``deepseek::distributed::ZeroRedundancyOptimizer``.
"""

import math

from .. import (ReduceOp, all_gather_into_tensor, broadcast, get_process_group_ranks,
                get_rank, get_world_size, reduce_scatter_tensor)

__all__ = ["ZeroRedundancyOptimizer"]


class ZeroRedundancyOptimizer:
    """``ZeroRedundancyOptimizer(params, optimizer_class, process_group=None, **defaults)``:
    wraps ``optimizer_class(shard, **defaults)`` over this rank's slice of ``params``.
    Every rank starts from the group's first rank's parameter values (broadcast here).
    ``parameters_as_bucket_view`` is accepted (the flat layout is always used);
    ``overlap_with_ddp=True`` and parameter groups are refused."""

    def __init__(self, params, optimizer_class, process_group=None,
                 parameters_as_bucket_view=False, overlap_with_ddp=False, **defaults):
        import deepseek as torch

        if overlap_with_ddp:
            raise ValueError("ZeroRedundancyOptimizer: overlap_with_ddp=True is not supported")
        params = list(params)
        if not params:
            raise ValueError("ZeroRedundancyOptimizer: optimizer got an empty parameter list")
        if any(isinstance(p, dict) for p in params):
            raise ValueError("ZeroRedundancyOptimizer: parameter groups are not supported; "
                             "pass the parameters (one group)")
        dtype = params[0].dtype
        if not dtype.is_floating_point:
            raise TypeError(f"ZeroRedundancyOptimizer: parameters must be floating point, "
                            f"got {dtype}")
        for i, p in enumerate(params):
            if p.dtype != dtype:
                raise TypeError(f"ZeroRedundancyOptimizer: parameter {i} is {p.dtype} but "
                                f"parameter 0 is {dtype}; one dtype per optimizer")
        self.process_group = process_group
        self._params = params
        self._dtype = dtype
        n = get_world_size(process_group)
        me = get_rank(process_group)
        src = get_process_group_ranks(process_group)[0] if process_group is not None else 0
        for p in params:
            broadcast(p, src, group=process_group)
        self._total = sum(p.numel() for p in params)
        self._shard_len = max(1, math.ceil(self._total / n))
        with torch.no_grad():
            flat = self._pad(torch.cat([p.detach().reshape(-1) for p in params]))
            shard = flat[me * self._shard_len:(me + 1) * self._shard_len].clone()
        self._shard = shard.requires_grad_(True)
        self.optim = optimizer_class([self._shard], **defaults)

    def _pad(self, flat):
        import deepseek as torch

        extra = self._shard_len * get_world_size(self.process_group) - flat.numel()
        if extra == 0:
            return flat.contiguous()
        return torch.cat([flat, torch.zeros(extra, dtype=flat.dtype)])

    @property
    def param_groups(self):
        """The inner optimizer's groups (change ``lr`` here)."""
        return self.optim.param_groups

    @property
    def defaults(self):
        return self.optim.defaults

    def shard_numel(self):
        """Elements of this rank's slice (the optimizer state covers these only)."""
        return self._shard_len

    def zero_grad(self, set_to_none=True):
        for p in self._params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()
        self.optim.zero_grad()

    def step(self, closure=None):
        """Averages the gradients over the group (reduce-scatter), steps this rank's slice
        and gathers the parameters. A parameter without a gradient counts as zero when
        others have one; when none has one, nothing happens."""
        import deepseek as torch

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for p in self._params]
        if all(g is None for g in grads):
            return loss
        n = get_world_size(self.process_group)
        with torch.no_grad():
            flat_g = self._pad(torch.cat([
                (g.to(self._dtype) if g is not None else torch.zeros(p.shape, dtype=self._dtype))
                .reshape(-1) for g, p in zip(grads, self._params)]))
            g_shard = torch.zeros(self._shard_len, dtype=self._dtype)
            reduce_scatter_tensor(g_shard, flat_g, op=ReduceOp.AVG, group=self.process_group)
        self._shard.grad = g_shard
        self.optim.step()
        with torch.no_grad():
            full = torch.zeros(self._shard_len * n, dtype=self._dtype)
            all_gather_into_tensor(full, self._shard.detach(), group=self.process_group)
            off = 0
            for p in self._params:
                k = p.numel()
                p.copy_(full[off:off + k].reshape(p.shape))
                off += k
        return loss

    def state_dict(self):
        """This rank's shard of the state (torch gathers it with consolidate_state_dict;
        here each rank saves its own, to be loaded on the same rank of a group of the same
        size)."""
        return self.optim.state_dict()

    def load_state_dict(self, state_dict):
        self.optim.load_state_dict(state_dict)

    def __repr__(self):
        return (f"ZeroRedundancyOptimizer({type(self.optim).__name__}, {len(self._params)} "
                f"parameters, {self._total} elements, {self._shard_len} per rank)")
