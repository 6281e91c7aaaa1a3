"""``deepseek.autohyper``: AutoHyper, Bayesian hyper-parameter search (Optuna's API).

```python
import deepseek.autohyper as ah

def objective(trial):
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    layers = trial.suggest_int("layers", 1, 4)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    for step in range(10):
        loss = ...                       # train a little, validate
        trial.report(loss, step)
        if trial.should_prune():
            raise ah.TrialPruned()
    return loss

study = ah.create_study(direction="minimize", sampler=ah.GPSampler(seed=0),
                        pruner=ah.MedianPruner(), storage="study.json")
study.optimize(objective, n_trials=50, timeout=600, n_jobs=1)
print(study.best_params, study.best_value)
study.write_report("study.html")
```

Samplers: ``TPESampler`` (tree-structured Parzen estimator, Optuna's defaults, the default
sampler), ``GPSampler`` (Gaussian-process expected improvement; the stronger choice for a
few continuous parameters and budgets of up to a few hundred trials), ``RandomSampler``.
Pruners: ``MedianPruner``, ``SuccessiveHalvingPruner``, ``NopPruner`` (the default).
The sampling, pruning and the study file live in Rust (``deepseek::tune``). ``storage`` is a
file path: the study is written there (atomically) after every trial and a study created on
an existing file continues it. ``n_jobs > 1`` runs trials in threads (the objective should
release the GIL, as deepseek's kernels do); ``deepseek tune`` runs trials as processes.
"""

import enum
import json
import math
import os
import threading
import time
import warnings

from . import _C

__all__ = [
    "create_study", "load_study", "Study", "Trial", "FrozenTrial", "TrialState", "TrialPruned",
    "TPESampler", "GPSampler", "RandomSampler", "MedianPruner", "SuccessiveHalvingPruner",
    "NopPruner",
]


class TrialPruned(Exception):
    """Raise from an objective after ``trial.should_prune()`` returned True."""


class TrialState(enum.Enum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    PRUNED = "PRUNED"
    FAIL = "FAIL"

    def is_finished(self):
        return self is not TrialState.RUNNING


# ----------------------------------------------------------------------------- samplers


class _Sampler:
    _name = None

    def __init__(self, seed=None, n_startup_trials=None, n_candidates=None):
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            raise ValueError(f"{type(self).__name__}: seed must be a non-negative int, got {seed!r}")
        self.seed = seed
        self._n_startup = n_startup_trials
        self._n_cand = n_candidates

    def __repr__(self):
        return f"{type(self).__name__}(seed={self.seed})"


class RandomSampler(_Sampler):
    """Independent uniform sampling (log scale for ``log=True``)."""
    _name = "random"

    def __init__(self, seed=None):
        super().__init__(seed)


class TPESampler(_Sampler):
    """Tree-structured Parzen estimator with Optuna's defaults."""
    _name = "tpe"

    def __init__(self, seed=None, n_startup_trials=10, n_ei_candidates=24):
        super().__init__(seed, n_startup_trials, n_ei_candidates)


class GPSampler(_Sampler):
    """Gaussian-process expected improvement (Matérn-5/2, length scales by marginal
    likelihood, EI maximised over ``n_candidates`` random points plus local refinement).
    Parameters not shared by all complete trials (conditional ones) are drawn uniformly."""
    _name = "gp"

    def __init__(self, seed=None, n_startup_trials=10, n_candidates=2000):
        super().__init__(seed, n_startup_trials, n_candidates)


# ------------------------------------------------------------------------------ pruners


class NopPruner:
    """Never prunes."""
    _name, _args = "nop", (0, 0, 1)


class MedianPruner:
    """Prunes when the trial's best intermediate value is worse than the median of the
    complete trials' values at the same step."""
    _name = "median"

    def __init__(self, n_startup_trials=5, n_warmup_steps=0, interval_steps=1):
        for k, v in [("n_startup_trials", n_startup_trials), ("n_warmup_steps", n_warmup_steps),
                     ("interval_steps", interval_steps)]:
            if not isinstance(v, int) or v < 0 or (k == "interval_steps" and v < 1):
                raise ValueError(f"MedianPruner: {k} must be a non-negative int (interval >= 1), got {v!r}")
        self._args = (n_startup_trials, n_warmup_steps, interval_steps)


class SuccessiveHalvingPruner:
    """Asynchronous successive halving: at steps ``min_resource * reduction_factor**k`` a
    trial continues only if it is in the best ``1/reduction_factor`` of those that got there."""
    _name = "successive_halving"

    def __init__(self, min_resource=1, reduction_factor=4, min_early_stopping_rate=0):
        if not isinstance(min_resource, int) or min_resource < 1:
            raise ValueError(f"SuccessiveHalvingPruner: min_resource must be an int >= 1, got {min_resource!r}")
        if not isinstance(reduction_factor, int) or reduction_factor < 2:
            raise ValueError(f"SuccessiveHalvingPruner: reduction_factor must be an int >= 2, got {reduction_factor!r}")
        if not isinstance(min_early_stopping_rate, int) or min_early_stopping_rate < 0:
            raise ValueError("SuccessiveHalvingPruner: min_early_stopping_rate must be an int >= 0")
        self._args = (min_resource, reduction_factor, min_early_stopping_rate)


# ------------------------------------------------------------------------------- trials

_JSON_TYPES = (type(None), bool, int, float, str)


class FrozenTrial:
    """A finished (or running) trial: ``number``, ``state``, ``params``, ``value``,
    ``intermediate_values`` (step -> value), ``duration`` (seconds), ``error``."""

    def __init__(self, rec):
        self.number = rec["number"]
        self.state = TrialState(rec["state"])
        self.params = dict(rec["params"])
        self.distributions = rec["distributions"]
        self.value = rec.get("value")
        self.intermediate_values = {int(s): v for s, v in rec.get("intermediate_values", [])}
        self.duration = rec.get("duration")
        self.datetime_start = rec.get("start_time")
        self.error = rec.get("error")

    @property
    def values(self):
        return None if self.value is None else [self.value]

    def __repr__(self):
        return (f"FrozenTrial(number={self.number}, state={self.state.name}, value={self.value}, "
                f"params={self.params})")


class Trial:
    """The handle an objective draws its parameters from."""

    def __init__(self, rust):
        self._t = rust
        self._choices = {}

    @property
    def number(self):
        return self._t.number

    def _suggest(self, name, dist):
        if not isinstance(name, str):
            raise TypeError(f"parameter name must be a str, got {type(name).__name__}")
        return self._t.suggest(name, json.dumps(dist))

    def suggest_float(self, name, low, high, *, step=None, log=False):
        """A float in ``[low, high]``; log scale with ``log=True``, a grid with ``step``."""
        d = {"type": "float", "low": float(low), "high": float(high), "log": bool(log)}
        if step is not None:
            d["step"] = float(step)
        return float(self._suggest(name, d))

    def suggest_int(self, name, low, high, step=1, log=False):
        """An int in ``[low, high]`` on the grid ``low, low + step, ...``."""
        for k, v in [("low", low), ("high", high), ("step", step)]:
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"suggest_int({name!r}): {k} must be an int, got {v!r}")
        d = {"type": "int", "low": low, "high": high, "log": bool(log), "step": step}
        return int(self._suggest(name, d))

    def suggest_categorical(self, name, choices):
        """One of ``choices`` (None, bool, int, float or str values)."""
        choices = list(choices)
        for c in choices:
            if not isinstance(c, _JSON_TYPES) or (isinstance(c, float) and not math.isfinite(c)):
                raise TypeError(f"suggest_categorical({name!r}): choices must be None, bool, int, "
                                f"float or str, got {c!r}")
        i = int(self._suggest(name, {"type": "categorical", "choices": choices}))
        return choices[i]

    # Optuna's older spellings.
    def suggest_uniform(self, name, low, high):
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name, low, high):
        return self.suggest_float(name, low, high, log=True)

    def report(self, value, step):
        """Records an intermediate value of the objective at ``step``."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise TypeError(f"report: step must be a non-negative int, got {step!r}")
        self._t.report(float(value), step)

    def should_prune(self):
        """True when the pruner would stop this trial now: then ``raise TrialPruned()``."""
        return self._t.should_prune()

    @property
    def params(self):
        return json.loads(self._t.params_json())


# -------------------------------------------------------------------------------- study


class Study:
    """Trials, a sampler, a pruner and (optionally) a study file. Use ``create_study``."""

    def __init__(self, direction="minimize", sampler=None, pruner=None, storage=None):
        if direction not in ("minimize", "maximize"):
            raise ValueError(f'direction must be "minimize" or "maximize", got {direction!r}')
        sampler = sampler if sampler is not None else GPSampler()
        pruner = pruner if pruner is not None else NopPruner()
        if not isinstance(sampler, _Sampler):
            raise TypeError(f"sampler must be a deepseek.autohyper sampler, got {sampler!r}")
        if not hasattr(pruner, "_args"):
            raise TypeError(f"pruner must be a deepseek.autohyper pruner, got {pruner!r}")
        self.sampler, self.pruner = sampler, pruner
        self.storage = None if storage is None else os.fspath(storage)
        self._s = _C._Study(direction, sampler._name, sampler.seed, sampler._n_startup,
                            sampler._n_cand, pruner._name, tuple(pruner._args), self.storage)

    @property
    def direction(self):
        return self._s.direction()

    @property
    def trials(self):
        return [FrozenTrial(r) for r in json.loads(self._s.trials_json())]

    def get_trials(self, states=None):
        ts = self.trials
        return ts if states is None else [t for t in ts if t.state in tuple(states)]

    @property
    def best_trial(self):
        n = self._s.best_number()
        if n is None:
            raise ValueError("no complete trial yet: best_trial is not available")
        return self.trials[n]

    @property
    def best_params(self):
        return self.best_trial.params

    @property
    def best_value(self):
        return self.best_trial.value

    def ask(self):
        return Trial(self._s.ask())

    def tell(self, trial, value=None, state=None, error=None):
        """Finishes a trial: ``value`` for a complete one, ``state=TrialState.PRUNED`` or
        ``TrialState.FAIL``."""
        number = trial.number if isinstance(trial, Trial) else int(trial)
        if state is None:
            state = TrialState.COMPLETE if value is not None else TrialState.FAIL
        st = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
              TrialState.FAIL: "fail"}[TrialState(state)]
        if st == "complete":
            try:
                value = float(value)
            except (TypeError, ValueError):
                return self._s.tell(number, "fail", None,
                                    f"the objective returned {value!r}, not a number")
        return self._s.tell(number, st, value, error)

    def _run_one(self, func, catch):
        trial = self.ask()
        try:
            value = func(trial)
        except TrialPruned:
            self.tell(trial, state=TrialState.PRUNED)
            return
        except catch as e:
            msg = f"{type(e).__name__}: {e}"
            self.tell(trial, state=TrialState.FAIL, error=msg)
            warnings.warn(f"autohyper: trial {trial.number} failed: {msg}", RuntimeWarning,
                          stacklevel=3)
            return
        except BaseException as e:
            self.tell(trial, state=TrialState.FAIL, error=f"{type(e).__name__}: {e}")
            raise
        self.tell(trial, value)

    def optimize(self, func, n_trials=None, timeout=None, n_jobs=1, catch=(Exception,),
                 callbacks=None, show_progress_bar=False):
        """Runs ``func(trial)`` on new trials until ``n_trials`` have run or ``timeout``
        seconds have passed. A trial that raises is recorded as failed (with a warning) and
        the study goes on; ``TrialPruned`` records it as pruned. ``n_jobs > 1`` (``-1``: one
        per CPU) runs trials in threads."""
        if n_trials is not None and (not isinstance(n_trials, int) or n_trials < 0):
            raise ValueError(f"n_trials must be a non-negative int or None, got {n_trials!r}")
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be >= 0 or None, got {timeout!r}")
        if n_jobs == -1:
            n_jobs = os.cpu_count() or 1
        if not isinstance(n_jobs, int) or n_jobs < 1:
            raise ValueError(f"n_jobs must be a positive int or -1, got {n_jobs!r}")
        catch = tuple(catch) if isinstance(catch, (list, tuple)) else (catch,)
        start = time.monotonic()
        lock = threading.Lock()
        started = [0]

        def take():
            with lock:
                if n_trials is not None and started[0] >= n_trials:
                    return False
                if timeout is not None and time.monotonic() - start >= timeout:
                    return False
                started[0] += 1
                return True

        def worker():
            while take():
                self._run_one(func, catch)
                for cb in callbacks or ():
                    cb(self, self.trials[-1])

        if n_jobs == 1:
            worker()
            return
        errors = []

        def guarded():
            try:
                worker()
            except BaseException as e:  # re-raised in the caller
                errors.append(e)

        threads = [threading.Thread(target=guarded, daemon=True) for _ in range(n_jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def trials_table(self):
        """A text table of all trials."""
        return self._s.table()

    def write_report(self, path):
        """Writes a self-contained HTML report: the best trial, a plot of the search
        (objective per trial with the best so far) and the trials."""
        self._s.write_report(os.fspath(path))

    def plot_svg(self):
        """The plot of the search as SVG text."""
        return self._s.svg()


def create_study(direction="minimize", sampler=None, pruner=None, storage=None):
    """A new study, or the continuation of the study saved at ``storage`` (a file path)."""
    return Study(direction=direction, sampler=sampler, pruner=pruner, storage=storage)


def load_study(storage, sampler=None, pruner=None, direction=None):
    """The study saved at ``storage`` (its direction is read from the file)."""
    path = os.fspath(storage)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such study file")
    if direction is None:
        try:
            with open(path) as f:
                direction = json.load(f).get("direction", "minimize")
        except (ValueError, AttributeError) as e:
            raise ValueError(f"autohyper: study file {path}: corrupted or not a study file: {e}") from None
    return Study(direction=direction, sampler=sampler, pruner=pruner, storage=path)
