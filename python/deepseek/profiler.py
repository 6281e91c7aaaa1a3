"""``deepseek.profiler``: ``torch.profiler``'s API over deepseek's kernel profiler.

```python
from deepseek.profiler import profile, record_function, schedule

with profile(record_shapes=True, profile_memory=True, with_flops=True) as prof:
    with record_function("forward"):
        loss = model(x).sum()
    loss.backward()
print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
prof.export_chrome_trace("trace.json")      # chrome://tracing, ui.perfetto.dev

with profile(schedule=schedule(wait=1, warmup=1, active=3),
             on_trace_ready=lambda p: p.export_chrome_trace("steps.json")) as prof:
    for batch in loader:
        train_step(batch)
        prof.step()
```

Every kernel the executor launches is recorded (eager kernels and fused lazy kernels) with
its time, input shapes, net memory allocated and FLOPs (matmul, conv2d, the LSTM layer).
There is no GPU backend, so only ``ProfilerActivity.CPU`` produces events.
"""

import functools
import warnings

from . import _C

__all__ = ["profile", "record_function", "schedule", "ProfilerActivity", "ProfilerAction"]


class ProfilerActivity:
    """What to profile (``CPU``; ``CUDA`` is accepted and records nothing: no GPU backend)."""
    CPU = "CPU"
    CUDA = "CUDA"


class ProfilerAction:
    """What the profiler does in a step of its schedule."""
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


class _Schedule:
    def __init__(self, wait, warmup, active, repeat, skip_first):
        for n, v in (("wait", wait), ("warmup", warmup), ("active", active), ("repeat", repeat),
                     ("skip_first", skip_first)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"schedule: {n} must be an int >= 0, got {v!r}")
        if active < 1:
            raise ValueError("schedule: active must be at least 1")
        self.args = (wait, warmup, active, repeat, skip_first)

    def __call__(self, step):
        wait, warmup, active, repeat, skip_first = self.args
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        n = wait + warmup + active
        if repeat > 0 and step // n >= repeat:
            return ProfilerAction.NONE
        m = step % n
        if m < wait:
            return ProfilerAction.NONE
        if m < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if m < n - 1 else ProfilerAction.RECORD_AND_SAVE


def schedule(*, wait, warmup, active, repeat=0, skip_first=0):
    """``torch.profiler.schedule``: after ``skip_first`` steps, cycles of ``wait`` idle
    steps, ``warmup`` discarded steps and ``active`` recorded steps, ``repeat`` times
    (0: until the profiler stops). Call ``prof.step()`` after every step."""
    return _Schedule(wait, warmup, active, repeat, skip_first)


class FunctionEventAvg(dict):
    """One row of ``key_averages()``; fields as attributes (``key``, ``count``,
    ``cpu_time_total``, ``self_cpu_time_total``, ``cpu_time``, ``cpu_memory_usage``,
    ``self_cpu_memory_usage``, ``flops``, ``input_shapes``; times in microseconds)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class EventList(list):
    """The result of ``key_averages()``: a list of rows with ``table()``."""

    def __init__(self, rows, prof, group_by_input_shape):
        super().__init__(FunctionEventAvg(r) for r in rows)
        self._prof = prof
        self._group = group_by_input_shape

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55, header=None,
              top_level_events_only=False):
        """A text table like PyTorch's (``sort_by``: cpu_time_total, self_cpu_time_total,
        cpu_time, count, cpu_memory_usage, self_cpu_memory_usage, flops)."""
        return self._prof.table(sort_by or "cpu_time_total", int(row_limit), self._group)

    def total_average(self):
        """The sum over all rows."""
        tot = FunctionEventAvg(key="Total", count=0, cpu_time_total=0.0, self_cpu_time_total=0.0,
                               cpu_memory_usage=0, self_cpu_memory_usage=0, flops=0)
        for r in self:
            for k in ("count", "cpu_time_total", "self_cpu_time_total", "cpu_memory_usage",
                      "self_cpu_memory_usage", "flops"):
                tot[k] += r[k]
        return tot


class profile:
    """``torch.profiler.profile``: records kernels (and ``record_function`` ranges) while
    active. Use as a context manager or with ``start()``/``stop()``; with a ``schedule``,
    call ``step()`` after each step; ``on_trace_ready(prof)`` runs when a cycle ends."""

    def __init__(self, activities=None, schedule=None, on_trace_ready=None, record_shapes=False,
                 profile_memory=False, with_stack=False, with_flops=False, with_modules=False,
                 experimental_config=None, execution_trace_observer=None, acc_events=False):
        acts = list(activities) if activities is not None else [ProfilerActivity.CPU]
        for a in acts:
            if a not in (ProfilerActivity.CPU, ProfilerActivity.CUDA):
                raise ValueError(f"profile: unknown activity {a!r}")
        if ProfilerActivity.CUDA in acts:
            warnings.warn("profile: CUDA activity requested, but deepseek has no GPU backend; "
                          "only CPU kernels are recorded")
        if schedule is not None and not isinstance(schedule, _Schedule):
            raise TypeError("profile: schedule must come from deepseek.profiler.schedule(...)")
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_flops = with_flops
        self.step_num = 0
        self._p = _C._Profiler(record_shapes, profile_memory, with_flops,
                               schedule.args if schedule is not None else None)

    def start(self):
        """Starts recording."""
        self.step_num = 0
        self._p.start()

    def stop(self):
        """Stops recording (the events stay readable)."""
        self._p.stop()
        if self.schedule is None and self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def step(self):
        """Marks the end of a training step (advances the schedule)."""
        ready = self._p.step()
        self.step_num += 1
        if ready and self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        # Also when the body raised: what ran is kept, and the trace can still be exported.
        self.stop()
        return False

    def events(self):
        """The recorded events as dicts (name, category, thread, start_us, dur_us, shapes,
        mem_bytes, flops)."""
        return self._p.events()

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0):
        """Events grouped by name (and input shapes): an ``EventList`` with ``table()``."""
        return EventList(self._p.key_averages(bool(group_by_input_shape)), self._p,
                         bool(group_by_input_shape))

    def export_chrome_trace(self, path):
        """Writes the events in the Chrome trace format (JSON)."""
        self._p.export_chrome_trace(str(path))


class record_function:
    """Marks a user range (a context manager or a decorator), shown in the table and the
    trace as its own row around the kernels it contains."""

    def __init__(self, name, args=None):
        self.name = str(name)
        self._token = 0

    def __enter__(self):
        self._token = _C._profiler_range_enter(self.name)
        return self

    def __exit__(self, *exc):
        if self._token:
            _C._profiler_range_exit(self._token)
            self._token = 0
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*a, **kw):
            with record_function(self.name):
                return fn(*a, **kw)
        return wrapped
