"""``deepseek.optim.lr_scheduler``: StepLR, CosineAnnealingLR, LinearLR, OneCycleLR and
SequentialLR — the Rust schedulers (PyTorch's formulas, including the chainable forms),
acting on the optimizer's ``param_groups`` — and LambdaLR, MultiplicativeLR,
ExponentialLR, MultiStepLR, ReduceLROnPlateau, ConstantLR, PolynomialLR,
CosineAnnealingWarmRestarts, CyclicLR and ChainedScheduler, written here in Python."""

import json
import math

from .. import _C

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
           "SequentialLR", "LambdaLR", "MultiplicativeLR", "ExponentialLR", "MultiStepLR",
           "ReduceLROnPlateau", "ConstantLR", "PolynomialLR", "CosineAnnealingWarmRestarts",
           "CyclicLR", "ChainedScheduler"]


class LRScheduler:
    """Base class: ``step()``, ``get_last_lr()``, ``last_epoch``, ``state_dict()``."""

    def __init__(self, optimizer, make):
        from . import Optimizer

        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a deepseek Optimizer")
        if optimizer._c is None:
            raise TypeError(
                f"{type(self).__name__}: deepseek's LR schedulers drive the built-in optimizers "
                f"(SGD, Adam, AdamW, RMSprop); for the Python-defined {type(optimizer).__name__} "
                "set param_groups[i]['lr'] directly")
        self.optimizer = optimizer
        optimizer._push()
        self._c = make(optimizer._c)
        optimizer._pull()

    def step(self, epoch=None):
        self.optimizer._push()
        if epoch is None:
            self._c.step()
        else:
            self._c.step_to(int(epoch))
        self.optimizer._pull()

    def get_last_lr(self):
        return list(self._c.get_last_lr())

    def get_lr(self):
        return self.get_last_lr()

    @property
    def last_epoch(self):
        return self._c.last_epoch

    @property
    def base_lrs(self):
        return json.loads(self._c.state_json())["base_lrs"]

    def state_dict(self):
        return json.loads(self._c.state_json())

    def load_state_dict(self, state_dict):
        self._c.load_state_json(json.dumps(state_dict))
        self.optimizer._pull()


def _check_last_epoch(last_epoch):
    if last_epoch != -1:
        raise NotImplementedError("last_epoch other than -1 is not supported; restore a "
                                  "scheduler with load_state_dict instead")


class StepLR(LRScheduler):
    """Multiplies the learning rate by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_last_epoch(last_epoch)
        super().__init__(optimizer, lambda o: _C.step_lr(o, int(step_size), float(gamma)))


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the base learning rate to ``eta_min`` over ``T_max`` steps."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check_last_epoch(last_epoch)
        super().__init__(optimizer, lambda o: _C.cosine_annealing_lr(o, int(T_max), float(eta_min)))


class LinearLR(LRScheduler):
    """Scales the learning rate linearly from ``start_factor`` to ``end_factor`` over
    ``total_iters`` steps."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        _check_last_epoch(last_epoch)
        super().__init__(optimizer, lambda o: _C.linear_lr(o, float(start_factor),
                                                           float(end_factor), int(total_iters)))


class OneCycleLR(LRScheduler):
    """The 1cycle policy (learning rate up then down, momentum the other way)."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        _check_last_epoch(last_epoch)
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
            total_steps = int(epochs) * int(steps_per_epoch)
        if int(total_steps) <= 0:
            raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
        lrs = [float(v) for v in max_lr] if isinstance(max_lr, (list, tuple)) else [float(max_lr)]
        for b in (base_momentum, max_momentum):
            if isinstance(b, (list, tuple)):
                raise NotImplementedError("per-group momentum bounds are not supported")
        super().__init__(optimizer, lambda o: _C.one_cycle_lr(
            o, lrs, int(total_steps), float(pct_start), anneal_strategy, bool(cycle_momentum),
            float(base_momentum), float(max_momentum), float(div_factor),
            float(final_div_factor), bool(three_phase)))


class SequentialLR(LRScheduler):
    """Runs ``schedulers`` one after another, switching at ``milestones``. The given
    schedulers are taken over (step the SequentialLR, not them)."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_last_epoch(last_epoch)
        for s in schedulers:
            if not isinstance(s, LRScheduler):
                raise TypeError(f"SequentialLR chains the Rust schedulers (StepLR, "
                                f"CosineAnnealingLR, LinearLR, OneCycleLR), not "
                                f"{type(s).__name__}")
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must belong to the same optimizer")
        self._schedulers = list(schedulers)
        super().__init__(optimizer, lambda o: _C.sequential_lr(
            o, [s._c for s in schedulers], [int(m) for m in milestones]))


# --------------------------------------------------------------------------- Python schedulers
# Schedules the Rust core does not have, written over ``param_groups`` with PyTorch's
# formulas. They also drive Python-defined optimizers.

class _PyScheduler:
    """Base of the Python schedulers: ``step()``, ``get_last_lr()``, ``last_epoch``,
    ``state_dict()`` (PyTorch's chainable form: each step updates the current rates)."""

    def __init__(self, optimizer, last_epoch=-1):
        _check_last_epoch(last_epoch)
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = -1
        self.step()

    def _lrs(self):
        raise NotImplementedError

    def step(self, epoch=None):
        if epoch is not None:
            raise NotImplementedError(f"{type(self).__name__}.step(epoch) is not supported")
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self._lrs()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items()
                if k != "optimizer" and not callable(v)}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class LambdaLR(_PyScheduler):
    """``lr = initial_lr * lr_lambda(epoch)`` (one function, or one per group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(self.lr_lambdas) != n:
            raise ValueError(f"Expected {n} lr_lambdas, but got {len(self.lr_lambdas)}")
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        return [b * f(self.last_epoch) for b, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        d = super().state_dict()
        d.pop("lr_lambdas", None)
        return d


class MultiplicativeLR(_PyScheduler):
    """``lr *= lr_lambda(epoch)`` at every step after the first."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        gs = self.optimizer.param_groups
        if self.last_epoch > 0:
            return [g["lr"] * f(self.last_epoch) for g, f in zip(gs, self.lr_lambdas)]
        return [g["lr"] for g in gs]

    def state_dict(self):
        d = super().state_dict()
        d.pop("lr_lambdas", None)
        return d


class ExponentialLR(_PyScheduler):
    """``lr *= gamma`` at every step."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        gs = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [g["lr"] for g in gs]
        return [g["lr"] * self.gamma for g in gs]


class MultiStepLR(_PyScheduler):
    """``lr *= gamma`` each time ``last_epoch`` reaches a milestone."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        k = self.milestones.count(self.last_epoch)
        return [g["lr"] * self.gamma ** k for g in self.optimizer.param_groups]


class ReduceLROnPlateau:
    """Reduces the learning rate by ``factor`` when ``step(metric)`` has not improved for
    ``patience`` steps (PyTorch's modes, thresholds, cooldown and ``min_lr``)."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError("mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs'")
        self.optimizer = optimizer
        n = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _better(self, a):
        if self.mode == "min":
            ref = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else self.best - self.threshold
            return a < ref
        ref = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else self.best + self.threshold
        return a > ref

    def step(self, metrics):
        current = float(metrics.item() if isinstance(metrics, _C.Tensor) else metrics)
        self.last_epoch += 1
        if self._better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, lo in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(g["lr"] * self.factor, lo)
                if g["lr"] - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class ConstantLR(_PyScheduler):
    """Multiplies the learning rate by ``factor`` until ``last_epoch`` reaches
    ``total_iters``."""

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor, self.total_iters = factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        gs = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [g["lr"] * self.factor for g in gs]
        if self.last_epoch != self.total_iters:
            return [g["lr"] for g in gs]
        return [g["lr"] * (1.0 / self.factor) for g in gs]


class PolynomialLR(_PyScheduler):
    """Decays the learning rate polynomially (``power``) to 0 over ``total_iters`` steps."""

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters, self.power = total_iters, power
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        gs = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch > self.total_iters:
            return [g["lr"] for g in gs]
        f = ((1.0 - self.last_epoch / self.total_iters) /
             (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [g["lr"] * f for g in gs]


class CosineAnnealingWarmRestarts(_PyScheduler):
    """Cosine annealing from each group's initial rate to ``eta_min`` over ``T_i`` steps,
    restarting with ``T_{i+1} = T_mult * T_i`` (``T_0`` first). ``step(epoch)`` accepts a
    (fractional) epoch, as in PyTorch."""

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if T_0 <= 0 or not isinstance(T_0, int):
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if T_mult < 1 or not isinstance(T_mult, int):
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type "
                             f"{type(eta_min)}")
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def _lrs(self):
        return [self.eta_min + (b - self.eta_min) * (1 + math.cos(math.pi * self.T_cur /
                                                                 self.T_i)) / 2
                for b in self.base_lrs]

    def step(self, epoch=None):
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur - self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for g, lr in zip(self.optimizer.param_groups, self._lrs()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]


class CyclicLR(_PyScheduler):
    """Cycles each group's learning rate between ``base_lr`` and ``max_lr`` (policies
    ``triangular``, ``triangular2``, ``exp_range`` or a custom ``scale_fn``), and the
    momentum (or Adam's beta1) inversely between ``max_momentum`` and ``base_momentum``."""

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _check_last_epoch(last_epoch)
        n = len(optimizer.param_groups)

        def per_group(v, name):
            if isinstance(v, (list, tuple)):
                if len(v) != n:
                    raise ValueError(f"expected {n} values for {name}, got {len(v)}")
                return list(v)
            return [v] * n

        base_lrs = per_group(base_lr, "base_lr")
        for g, lr in zip(optimizer.param_groups, base_lrs):
            g["lr"] = lr
            g["initial_lr"] = lr
        self.max_lrs = per_group(max_lr, "max_lr")
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        self.mode, self.gamma, self._scale_fn_custom = mode, gamma, scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else             ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            d = optimizer.defaults
            if "momentum" not in d and "betas" not in d:
                raise ValueError("optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled")
            self.use_beta1 = "betas" in d
            self.base_momentums = per_group(base_momentum, "base_momentum")
            self.max_momentums = per_group(max_momentum, "max_momentum")
            for g, m in zip(optimizer.param_groups, self.max_momentums):
                if self.use_beta1:
                    g["betas"] = (m, *g["betas"][1:])
                else:
                    g["momentum"] = m
        super().__init__(optimizer, last_epoch)

    def scale_fn(self, x):
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def _lrs(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale = x / self.step_ratio
        else:
            scale = (x - 1) / (self.step_ratio - 1)
        arg = cycle if self.scale_mode == "cycle" else self.last_epoch
        lrs = [b + (m - b) * scale * self.scale_fn(arg)
               for b, m in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for g, bm, mm in zip(self.optimizer.param_groups, self.base_momentums,
                                 self.max_momentums):
                m = mm - (mm - bm) * scale * self.scale_fn(arg)
                if self.use_beta1:
                    g["betas"] = (m, *g["betas"][1:])
                else:
                    g["momentum"] = m
        return lrs

    def state_dict(self):
        d = super().state_dict()
        d.pop("_scale_fn_custom", None)
        return d


class ChainedScheduler:
    """Steps several schedulers of one optimizer together, each applying its change to the
    rates the previous ones set."""

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError(f"{type(self).__name__} expects at least one scheduler to be "
                             f"chained, but got no scheduler.")
        optimizer = optimizer or schedulers[0].optimizer
        for i, s in enumerate(schedulers):
            if s.optimizer is not optimizer:
                raise ValueError(f"ChainedScheduler expects all schedulers to belong to the same "
                                 f"optimizer, but got scheduler {type(s).__name__} at index {i} "
                                 f"that is different from the optimizer")
        self._schedulers, self.optimizer = schedulers, optimizer
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def step(self):
        for s in self._schedulers:
            s.step()
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    def state_dict(self):
        return {"_schedulers": [s.state_dict() for s in self._schedulers],
                "_last_lr": list(self._last_lr)}

    def load_state_dict(self, state_dict):
        for s, sd in zip(self._schedulers, state_dict["_schedulers"]):
            s.load_state_dict(sd)
        self._last_lr = list(state_dict["_last_lr"])
