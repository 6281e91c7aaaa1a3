"""``deepseek.trainer.Trainer``: a ready training loop (the tutorials' template).

```python
from deepseek.trainer import Trainer
trainer = Trainer(model=model, optimizer=AdamW(model.parameters(), lr=5e-5),
                  fp16_enabled=True, gradient_accumulation_steps=4)
history = trainer.fit(train_loader, val_loader, epochs=10)
```

* Batches are ``(inputs, targets)``; the default loss is cross-entropy on
  ``model(inputs)`` (logits of shape [..., C] are flattened against targets [...]).
  Pass ``loss_fn=fn(outputs, targets)`` for another loss, or
  ``compute_loss=fn(model, batch)`` for full control.
* ``gradient_accumulation_steps=k`` divides each loss by k and steps every k batches
  (and once more at the end of an epoch for a partial group).
* ``fp16_enabled=True`` trains with dynamic loss scaling (``deepseek.amp.GradScaler``,
  skipping steps whose gradients overflow) inside ``autocast``; on deepseek's CPU
  backend autocast casts nothing, so the arithmetic stays float32.
* ``max_grad_norm`` clips gradients (after unscaling); ``scheduler`` is stepped after every
  optimizer step.
* ``tensorboard="runs/exp"`` (a directory or a ``SummaryWriter``) logs ``train/loss`` and
  ``train/lr`` every optimizer step and ``val/loss`` and ``train/epoch_loss`` every epoch.
* ``metrics_port=9464`` serves Prometheus metrics at ``http://0.0.0.0:9464/metrics``
  (``deepseek.monitor``; 0 picks a free port, see ``trainer.metrics_server.port``).
* ``profiler=deepseek.profiler.profile(...)`` is started by ``fit`` (unless running),
  stepped after every optimizer step and stopped when ``fit`` returns or raises.
* ``adversarial=deepseek.adversarial.PGDConfig(eps=0.1, alpha=0.02, steps=7)`` trains
  Madry-style: each training batch ``(x, y)`` is replaced by ``(attack(model, x, y), y)``
  before the loss (the attack runs in eval mode with the parameters frozen, so only the
  training step's backward touches ``.grad``). Any callable ``(model, x, y) -> x_adv`` works
  (``FGSMConfig`` for Goodfellow-style training); a config without its own ``loss_fn``
  attacks the Trainer's ``loss_fn`` when one was given (else summed cross-entropy).
  ``adversarial_clean_weight=w`` (0 by default) trains on ``w * clean_loss + (1 - w) *
  adversarial_loss`` instead (Goodfellow et al.'s mix is 0.5). ``train_loss`` in the history
  is then that training loss; ``evaluate`` stays clean (use
  ``deepseek.adversarial.robust_accuracy`` for robust accuracy).
"""

import math
import time

from . import _C
from . import amp as _amp
from ._grad_mode import no_grad
from .nn import functional as F
from .nn.utils import clip_grad_norm_


def _default_loss(outputs, targets):
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    if outputs.dim() > 2 or (outputs.dim() == 2 and targets.dim() == 2
                             and not targets.is_floating_point()):
        outputs = outputs.reshape(-1, outputs.shape[-1])
        targets = targets.reshape(-1)
    return F.cross_entropy(outputs, targets)


class Trainer:
    def __init__(self, model, optimizer=None, loss_fn=None, compute_loss=None, scheduler=None,
                 fp16_enabled=False, bf16=False, gradient_accumulation_steps=1,
                 max_grad_norm=None, log_every=0, device=None, callbacks=None, tensorboard=None,
                 metrics_port=None, profiler=None, adversarial=None,
                 adversarial_clean_weight=0.0):
        from .optim import AdamW

        if gradient_accumulation_steps < 1:
            raise ValueError("gradient_accumulation_steps must be at least 1")
        if device is not None and not str(device).startswith("cpu"):
            raise RuntimeError(f"Trainer(device={device!r}): CUDA is not available (this build "
                               "of deepseek has only the CPU backend)")
        if adversarial is not None and not callable(adversarial):
            raise TypeError("Trainer: adversarial must be a deepseek.adversarial.PGDConfig/"
                            "FGSMConfig or a callable (model, x, y) -> x_adv, got "
                            f"{type(adversarial).__name__}")
        w = adversarial_clean_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= w <= 1.0:
            raise ValueError("Trainer: adversarial_clean_weight must be a number in [0, 1], "
                             f"got {w!r}")
        if w and adversarial is None:
            raise ValueError("Trainer: adversarial_clean_weight is set but adversarial is None")
        self.adversarial = adversarial
        self.adversarial_clean_weight = float(w)
        self._user_loss_fn = loss_fn
        self.model = model
        self.optimizer = optimizer if optimizer is not None else AdamW(model.parameters(), lr=1e-3)
        self.loss_fn = loss_fn or _default_loss
        self.compute_loss = compute_loss
        self.scheduler = scheduler
        self.fp16_enabled = fp16_enabled
        self.bf16 = bf16
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.max_grad_norm = max_grad_norm
        self.log_every = log_every
        self.callbacks = list(callbacks or [])
        self.scaler = _amp.GradScaler(enabled=fp16_enabled)
        self.global_step = 0
        self.skipped_steps = 0
        self.history = {"train_loss": [], "val_loss": [], "epoch_time": []}
        self.writer = None
        if tensorboard is not None:
            from .utils.tensorboard import SummaryWriter
            self.writer = (tensorboard if hasattr(tensorboard, "add_scalar")
                           else SummaryWriter(str(tensorboard), flush_secs=10))
        self.metrics_server = None
        if metrics_port is not None:
            from .monitor import MetricsServer
            self.metrics_server = MetricsServer(metrics_port)
        self.profiler = profiler
        self._step_t0 = None
        self._step_units = 0
        self._units_total = 0
        self._train_secs = 0.0
        self._last_loss = float("nan")

    def _autocast(self):
        if self.fp16_enabled:
            return _amp.autocast("cuda", dtype=_C.float16)
        if self.bf16:
            return _amp.autocast("cpu", dtype=_C.bfloat16)
        return _amp.autocast("cpu", enabled=False)

    def _loss(self, batch):
        if self.compute_loss is not None:
            return self.compute_loss(self.model, batch)
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("Trainer: batches must be (inputs, targets) pairs unless "
                            "compute_loss= is given")
        inputs, targets = batch
        return self.loss_fn(self.model(inputs), targets)

    def _adversarial_batch(self, batch):
        """``(attack(model, x, y), y)`` for an ``(x, y)`` batch (outside autocast)."""
        from . import adversarial as _adv

        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TypeError("Trainer(adversarial=...): batches must be (inputs, targets) pairs")
        x, y = batch
        if isinstance(self.adversarial, (_adv.PGDConfig, _adv.FGSMConfig)):
            x_adv = self.adversarial(self.model, x, y, loss_fn=self._user_loss_fn)
        else:
            x_adv = self.adversarial(self.model, x, y)
        return (x_adv, y)

    def _train_loss(self, batch):
        if self.adversarial is None:
            with self._autocast():
                return self._loss(batch)
        adv_batch = self._adversarial_batch(batch)
        w = self.adversarial_clean_weight
        with self._autocast():
            loss = self._loss(adv_batch)
            if w:
                loss = loss * (1.0 - w) + self._loss(batch) * w
        return loss

    def _optimizer_step(self):
        if self.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            clip_grad_norm_(params, self.max_grad_norm)
        scale_before = self.scaler.get_scale()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.fp16_enabled and self.scaler.get_scale() < scale_before:
            self.skipped_steps += 1
        self.optimizer.zero_grad()
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        self.global_step += 1
        self._observe_step(lr)

    def _observe_step(self, lr):
        import time as _t
        now = _t.perf_counter()
        secs = now - self._step_t0 if self._step_t0 is not None else 0.0
        self._step_t0 = now
        units, self._step_units = self._step_units, 0
        self._units_total += units
        self._train_secs += secs
        loss = self._last_loss
        if self.writer is not None:
            if math.isfinite(loss):
                self.writer.add_scalar("train/loss", loss, self.global_step)
            self.writer.add_scalar("train/lr", lr, self.global_step)
        if self.metrics_server is not None:
            self.metrics_server.record_step(loss, lr, units, "samples", secs)
            if self._train_secs > 0:
                self.metrics_server.set_throughput(self._units_total / self._train_secs, "samples")
        if self.profiler is not None:
            self.profiler.step()

    def train_epoch(self, loader):
        self.model.train()
        k = self.gradient_accumulation_steps
        total, count, pending = 0.0, 0, 0
        self.optimizer.zero_grad()
        self._step_t0 = time.perf_counter()
        for batch in loader:
            loss = self._train_loss(batch)
            lv = loss.item()
            self._last_loss = lv
            first = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
            self._step_units += int(first.shape[0]) if getattr(first, "shape", None) else 1
            if not math.isfinite(lv) and not self.fp16_enabled:
                raise RuntimeError(f"Trainer: non-finite loss {lv} at step {self.global_step}")
            self.scaler.scale(loss / k).backward()
            total += lv
            count += 1
            pending += 1
            if pending == k:
                self._optimizer_step()
                pending = 0
                if self.log_every and self.global_step % self.log_every == 0:
                    print(f"step {self.global_step}: loss {lv:.4f}")
        if pending:
            self._optimizer_step()
        return total / max(count, 1)

    def evaluate(self, loader):
        """Mean loss over ``loader`` in eval mode without gradients; the model's mode is
        restored afterwards."""
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        try:
            with no_grad():
                for batch in loader:
                    total += self._loss(batch).item()
                    count += 1
        finally:
            self.model.train(was_training)
        return total / max(count, 1)

    def fit(self, train_loader, val_loader=None, epochs=1, verbose=True):
        """Trains for ``epochs`` epochs; returns the history (per-epoch mean train loss,
        validation loss when ``val_loader`` is given, epoch time)."""
        started = False
        if self.profiler is not None and not self.profiler._p.is_running():
            self.profiler.start()
            started = True
        try:
            return self._fit(train_loader, val_loader, epochs, verbose)
        finally:
            if started:
                self.profiler.stop()
            if self.writer is not None:
                self.writer.flush()

    def _fit(self, train_loader, val_loader, epochs, verbose):
        for epoch in range(epochs):
            t0 = time.perf_counter()
            tl = self.train_epoch(train_loader)
            self.history["train_loss"].append(tl)
            if self.writer is not None:
                self.writer.add_scalar("train/epoch_loss", tl, self.global_step)
            msg = f"epoch {epoch + 1}/{epochs}: train_loss {tl:.4f}"
            if val_loader is not None:
                vl = self.evaluate(val_loader)
                self.history["val_loss"].append(vl)
                if self.writer is not None:
                    self.writer.add_scalar("val/loss", vl, self.global_step)
                if self.metrics_server is not None:
                    self.metrics_server.record_val_loss(vl)
                msg += f" val_loss {vl:.4f}"
            dt = time.perf_counter() - t0
            self.history["epoch_time"].append(dt)
            if verbose:
                print(msg + f" ({dt:.2f}s)")
            for cb in self.callbacks:
                if cb(self, epoch) is False:
                    return self.history
        return self.history
