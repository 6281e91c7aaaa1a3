"""``deepseek.optim.lr_scheduler``: StepLR, CosineAnnealingLR, LinearLR, OneCycleLR and
SequentialLR — the Rust schedulers (PyTorch's formulas, including the chainable forms),
acting on the optimizer's ``param_groups``."""

import json

from .. import _C

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR",
           "SequentialLR"]


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
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must belong to the same optimizer")
        self._schedulers = list(schedulers)
        super().__init__(optimizer, lambda o: _C.sequential_lr(
            o, [s._c for s in schedulers], [int(m) for m in milestones]))
