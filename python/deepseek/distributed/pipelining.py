"""``deepseek.distributed.pipelining``: pipeline parallelism with
``torch.distributed.pipelining``'s names: ``PipelineStage``, ``ScheduleGPipe``,
``Schedule1F1B``.

Rank ``i`` of the group runs stage ``i`` (its ``submodule``). The batch splits along dim 0
into ``n_microbatches`` equal chunks; activations go forward and their gradients back point
to point (``isend``/``recv``). Each micro-batch's loss is divided by ``n_microbatches``
(``scale_grads=True``, torch's default), so with a mean loss the stage parameters' gradients
equal those of the whole batch in one process::

    stage = PipelineStage(my_layers, stage_index=rank, num_stages=2)
    schedule = Schedule1F1B(stage, n_microbatches=4, loss_fn=F.mse_loss)
    if rank == 0:
        schedule.step(x)                               # the first stage takes the input
    else:
        losses = []
        out = schedule.step(target=y, losses=losses)   # the last the target

The Rust twin is ``deepseek::distributed::{PipelineStage, ScheduleGPipe, Schedule1F1B}``.
"""

from . import get_process_group_ranks, get_rank, get_world_size, isend, recv

__all__ = ["PipelineStage", "Schedule1F1B", "ScheduleGPipe"]

_TAG_FWD, _TAG_BWD = 16000, 16002
_MAX_DIMS = 8
_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8")


class PipelineStage:
    """Stage ``stage_index`` of ``num_stages``, run by this rank: ``submodule`` is its part
    of the model. ``group`` (the world by default) has one rank per stage."""

    def __init__(self, submodule, stage_index, num_stages, device=None, input_args=None,
                 output_args=None, group=None):
        n = get_world_size(group)
        if not 0 <= stage_index < num_stages:
            raise ValueError(f"PipelineStage: stage_index {stage_index} is not below "
                             f"num_stages {num_stages}")
        if n != num_stages:
            raise ValueError(f"PipelineStage: num_stages is {num_stages} but the group has {n} "
                             "ranks (one stage per rank)")
        me = get_rank(group)
        if me != stage_index:
            raise ValueError(f"PipelineStage: stage {stage_index} built on group rank {me}; "
                             "stage i runs on rank i")
        self.submod = submodule
        self.stage_index = stage_index
        self.num_stages = num_stages
        self.group = group
        self._ranks = (get_process_group_ranks(group) if group is not None
                       else list(range(n)))

    @property
    def is_first(self):
        return self.stage_index == 0

    @property
    def is_last(self):
        return self.stage_index == self.num_stages - 1

    def _peer(self, d):
        return self._ranks[self.stage_index + d]

    def _send(self, t, d, tag):
        """Shape and dtype first, then the data (both asynchronous)."""
        import deepseek as torch

        t = t.detach().contiguous()
        if t.dim() > _MAX_DIMS:
            raise ValueError(f"pipeline: activations of {t.dim()} dims (at most {_MAX_DIMS})")
        name = str(t.dtype).replace("deepseek.", "")
        if name not in _DTYPES:
            raise TypeError(f"pipeline: {name} tensors cannot be sent between stages "
                            f"(one of {', '.join(_DTYPES)})")
        head = [_DTYPES.index(name), t.dim()]
        head += list(t.shape) + [0] * (_MAX_DIMS - t.dim())
        return [isend(torch.tensor(head, dtype=torch.int64), self._peer(d), self.group, tag),
                isend(t, self._peer(d), self.group, tag + 1)]

    def _recv(self, d, tag):
        import deepseek as torch

        head = torch.zeros(2 + _MAX_DIMS, dtype=torch.int64)
        recv(head, self._peer(d), self.group, tag)
        h = [int(v) for v in head.tolist()]
        dtype = getattr(torch, _DTYPES[h[0]])
        t = torch.zeros(h[2:2 + h[1]], dtype=dtype)
        recv(t, self._peer(d), self.group, tag + 1)
        return t


class _Schedule:
    _one_f_one_b = False

    def __init__(self, stage, n_microbatches, loss_fn=None, scale_grads=True, **kwargs):
        if n_microbatches < 1:
            raise ValueError("pipeline schedule: n_microbatches must be positive")
        self._stage = stage
        self._n = int(n_microbatches)
        self._loss_fn = loss_fn
        self.scale_grads = scale_grads

    def _split(self, what, t):
        b = t.shape[0] if t.dim() > 0 else 0
        if t.dim() == 0 or b % self._n:
            raise ValueError(f"pipeline schedule: the {what} of shape {list(t.shape)} does not "
                             f"split along dim 0 into {self._n} equal micro-batches")
        k = b // self._n
        return [t[m * k:(m + 1) * k] for m in range(self._n)]

    def step(self, *args, target=None, losses=None, **kwargs):
        """One step over a batch: the input on the first stage, ``target`` on the last.
        Gradients accumulate into the stages' parameters. The last stage returns the
        concatenated output (and appends each micro-batch's loss to ``losses``); the others
        return ``None``."""
        import deepseek as torch

        s = self._stage
        if s.is_first:
            if len(args) != 1:
                raise ValueError("pipeline schedule: the first stage needs the input")
            inputs = self._split("input", args[0])
        elif args:
            raise ValueError(f"pipeline schedule: stage {s.stage_index} is not the first: only "
                             "stage 0 takes the input")
        backward = self._loss_fn is not None
        targets = None
        if s.is_last and backward:
            if target is None:
                raise ValueError("pipeline schedule: the last stage needs the target to "
                                 "compute the loss")
            targets = self._split("target", target)
        micro, outputs, sends, my_losses = {}, [], [], []
        scale = 1.0 / self._n if self.scale_grads else 1.0

        def forward(m):
            if s.is_first:
                x = inputs[m]
            else:
                x = s._recv(-1, _TAG_FWD)
                if backward:
                    x.requires_grad_(True)
            y = s.submod(x)
            loss = None
            if not s.is_last:
                sends.extend(s._send(y, 1, _TAG_FWD))
            else:
                outputs.append(y.detach())
                if backward:
                    loss = self._loss_fn(y, targets[m])
                    my_losses.append(loss.detach())
            micro[m] = (x, y, loss)

        def backward_(m):
            x, y, loss = micro.pop(m)
            if s.is_last:
                (loss * scale).backward()
            else:
                g = s._recv(1, _TAG_BWD)
                if list(g.shape) != list(y.shape):
                    raise ValueError(f"pipeline schedule: stage {s.stage_index} got a gradient "
                                     f"of shape {list(g.shape)} for its output of shape "
                                     f"{list(y.shape)}")
                if y.requires_grad:
                    y.backward(g)
            if not s.is_first:
                g = x.grad if x.grad is not None else torch.zeros_like(x)
                sends.extend(s._send(g, -1, _TAG_BWD))

        n = self._n
        if not backward:
            for m in range(n):
                forward(m)
        elif not self._one_f_one_b:
            for m in range(n):
                forward(m)
            for m in range(n):
                backward_(m)
        else:
            warmup = min(s.num_stages - s.stage_index - 1, n)
            for m in range(warmup):
                forward(m)
            for i in range(n - warmup):
                forward(warmup + i)
                backward_(i)
            for m in range(n - warmup, n):
                backward_(m)
        for w in sends:
            w.wait()
        if not s.is_last:
            return None
        if losses is not None:
            losses.extend(my_losses)
        return torch.cat(outputs, 0)


class ScheduleGPipe(_Schedule):
    """GPipe: every micro-batch's forward, then every backward."""


class Schedule1F1B(_Schedule):
    """1F1B: after a warm-up of ``num_stages - stage_index - 1`` forwards, one forward then
    one backward; at most ``num_stages`` micro-batches' activations are kept."""

    _one_f_one_b = True

