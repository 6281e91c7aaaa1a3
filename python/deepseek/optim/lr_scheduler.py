"""``deepseek.optim.lr_scheduler``: StepLR, CosineAnnealingLR, LinearLR, OneCycleLR and
SequentialLR — the Rust schedulers (PyTorch's formulas, including the chainable forms),
acting on the optimizer's ``param_groups`` — and LambdaLR, MultiplicativeLR,
ExponentialLR, MultiStepLR and ReduceLROnPlateau, written here in Python."""

import json
import math

from .. import _C

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
           "SequentialLR", "LambdaLR", "MultiplicativeLR", "ExponentialLR", "MultiStepLR",
           "ReduceLROnPlateau"]


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
