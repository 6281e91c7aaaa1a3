"""Mixed precision: ``autocast`` and ``GradScaler`` (``deepseek.amp``; also reachable as
``deepseek.cuda.amp``).

* ``GradScaler`` is real and works on the CPU: it multiplies the loss by the scale,
  unscales the gradients before the optimizer step, skips the step when a gradient holds
  inf/NaN, and grows/backs off the scale. Its default ``init_scale`` is ``2**13 = 8192`` as
  in deepseek's tutorials (PyTorch's default is ``2**16``); pass ``init_scale=65536.0`` for
  PyTorch's behaviour.
* ``autocast`` is, for now, a context manager that leaves computation in float32 (the CPU
  kernels compute f16/bf16 through f32 anyway): it validates its arguments and records the
  requested dtype (``deepseek.amp.get_autocast_dtype``) but casts nothing.
"""

import functools
import math

from . import _C

_state = {"enabled": False, "dtype": None}


def is_autocast_enabled(device_type=None):
    return _state["enabled"]


def get_autocast_dtype(device_type=None):
    return _state["dtype"]


class autocast:
    """Autocast region (a no-op on deepseek's CPU backend; see the module docstring)."""

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        if device_type not in ("cuda", "cpu"):
            raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
        if dtype is None:
            dtype = _C.float16 if device_type == "cuda" else _C.bfloat16
        if dtype not in (_C.float16, _C.bfloat16, _C.float32):
            raise ValueError(f"autocast: dtype must be float16 or bfloat16, got {dtype}")
        self.device_type = device_type
        self.fast_dtype = dtype
        self.enabled = enabled
        self._prev = None

    def __enter__(self):
        self._prev = dict(_state)
        if self.enabled:
            _state["enabled"] = True
            _state["dtype"] = self.fast_dtype
        return self

    def __exit__(self, *exc):
        _state.update(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self.enabled):
                return fn(*args, **kwargs)

        return wrapper


class GradScaler:
    """Dynamic loss scaling. ``scale(loss)`` → ``backward`` → ``step(optimizer)`` →
    ``update()``; ``unscale_(optimizer)`` first when clipping gradients."""

    def __init__(self, device="cuda", init_scale=2.0 ** 13, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        if isinstance(device, (int, float)) and not isinstance(device, bool):
            # GradScaler(8192.0): the old positional init_scale.
            init_scale, device = float(device), "cuda"
        if growth_factor <= 1.0:
            raise ValueError("GradScaler: growth_factor should be > 1")
        if not 0.0 < backoff_factor < 1.0:
            raise ValueError("GradScaler: backoff_factor should be in (0, 1)")
        if growth_interval <= 0:
            raise ValueError("GradScaler: growth_interval should be a positive int")
        self._device = device
        self._enabled = enabled
        self._scale = float(init_scale)
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer = {}

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        return self._growth_factor

    def get_backoff_factor(self):
        return self._backoff_factor

    def get_growth_interval(self):
        return self._growth_interval

    def set_growth_factor(self, v):
        self._growth_factor = float(v)

    def set_backoff_factor(self, v):
        self._backoff_factor = float(v)

    def set_growth_interval(self, v):
        self._growth_interval = int(v)

    def scale(self, outputs):
        """``outputs * scale`` (a tensor, or a list/tuple of them)."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, _C.Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise TypeError("GradScaler.scale expects a Tensor or a list/tuple of Tensors")

    def _state_of(self, optimizer):
        return self._per_optimizer.setdefault(id(optimizer), {"unscaled": False, "found_inf": False,
                                                               "stepped": False})

    def unscale_(self, optimizer):
        """Divides the gradients of ``optimizer``'s parameters by the scale (once per step)
        and records whether any of them is inf/NaN."""
        if not self._enabled:
            return
        st = self._state_of(optimizer)
        if st["unscaled"]:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if st["stepped"]:
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        found = False
        with _C_no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    g.mul_(inv)
                    m = g.abs().max().item() if g.numel() else 0.0
                    if not math.isfinite(m):
                        found = True
        st["unscaled"] = True
        st["found_inf"] = found

    def step(self, optimizer, *args, **kwargs):
        """Unscales (if not done yet) and steps ``optimizer`` unless a gradient is inf/NaN.
        Returns the optimizer's return value, or None when the step was skipped."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        st = self._state_of(optimizer)
        if st["stepped"]:
            raise RuntimeError("step() has already been called since the last update().")
        if not st["unscaled"]:
            self.unscale_(optimizer)
        st["stepped"] = True
        if st["found_inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        """Adjusts the scale: back off after a step with inf/NaN gradients, grow after
        ``growth_interval`` clean steps in a row."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, _C.Tensor) else new_scale)
            self._growth_tracker = 0
        else:
            found = any(s["found_inf"] for s in self._per_optimizer.values())
            if found:
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self):
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state):
        if not self._enabled:
            return
        if not state:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._scale = float(state["scale"])
        self._growth_factor = float(state["growth_factor"])
        self._backoff_factor = float(state["backoff_factor"])
        self._growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["_growth_tracker"])


class _C_no_grad:
    def __enter__(self):
        self._prev = _C.set_grad_enabled(False)

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._prev)
        return False
