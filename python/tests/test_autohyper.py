"""deepseek.autohyper: Optuna's API over the Rust samplers, pruners and study files."""

import json
import math
import os
import time

import pytest

import deepseek.autohyper as ah


def quad(trial):
    x = trial.suggest_float("x", -5.0, 5.0)
    y = trial.suggest_float("y", -5.0, 5.0)
    return (x - 1.0) ** 2 + (y + 2.0) ** 2


def mixed(trial):
    lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
    n = trial.suggest_int("n", 1, 64, log=True)
    k = trial.suggest_int("k", 0, 20, step=5)
    act = trial.suggest_categorical("act", ["relu", "tanh", None, 3])
    q = trial.suggest_float("q", 0.0, 1.0, step=0.25)
    assert isinstance(n, int) and isinstance(k, int) and isinstance(lr, float)
    assert 1e-5 <= lr <= 1e-1 and 1 <= n <= 64 and k in (0, 5, 10, 15, 20)
    assert q in (0.0, 0.25, 0.5, 0.75, 1.0)
    return (math.log10(lr) + 3) ** 2 + abs(math.log(n) - 2) + k / 10 + (act != "tanh") + q


@pytest.mark.parametrize("sampler", [ah.TPESampler, ah.GPSampler, ah.RandomSampler])
def test_optimize_finds_the_minimum_region_and_exposes_the_study(sampler):
    study = ah.create_study(direction="minimize", sampler=sampler(seed=0))
    study.optimize(quad, n_trials=30)
    assert len(study.trials) == 30
    assert all(t.state == ah.TrialState.COMPLETE for t in study.trials)
    best = study.best_trial
    assert best.value == study.best_value == min(t.value for t in study.trials)
    assert study.best_params == best.params and set(best.params) == {"x", "y"}
    assert study.best_value < 3.0


def test_seeded_studies_repeat_and_differ_by_seed():
    def params(seed, sampler):
        s = ah.create_study(sampler=sampler(seed=seed))
        s.optimize(mixed, n_trials=15)
        return [t.params for t in s.trials]

    for sampler in (ah.TPESampler, ah.GPSampler):
        assert params(3, sampler) == params(3, sampler)
        assert params(3, sampler) != params(4, sampler)


def test_gp_beats_random_on_a_quadratic():
    def med(sampler):
        bests = []
        for seed in range(5):
            s = ah.create_study(sampler=sampler(seed=seed))
            s.optimize(quad, n_trials=30)
            bests.append(s.best_value)
        return sorted(bests)[2]

    assert med(ah.GPSampler) < 0.2 * med(ah.RandomSampler)


def test_maximize_and_categorical_values_come_back_as_given():
    study = ah.create_study(direction="maximize", sampler=ah.TPESampler(seed=1))
    study.optimize(lambda t: {"a": 1.0, "b": 5.0, "c": 2.0}[t.suggest_categorical("k", ["a", "b", "c"])],
                   n_trials=20)
    assert study.direction == "maximize"
    assert study.best_value == 5.0 and study.best_params == {"k": "b"}


def test_empty_ranges_and_bad_arguments_raise_value_errors():
    t = ah.create_study().ask()
    with pytest.raises(ValueError, match="empty range"):
        t.suggest_float("lr", 1.0, 0.1)
    with pytest.raises(ValueError, match="empty range"):
        t.suggest_int("n", 5, 1)
    with pytest.raises(ValueError, match="empty choices"):
        t.suggest_categorical("c", [])
    with pytest.raises(ValueError, match="log"):
        t.suggest_float("x", 0.0, 1.0, log=True)
    with pytest.raises(TypeError):
        t.suggest_categorical("c", [object()])
    with pytest.raises(ValueError):
        ah.create_study(direction="down")
    with pytest.raises(ValueError):
        ah.MedianPruner(interval_steps=0)
    with pytest.raises(ValueError):
        ah.create_study().optimize(quad, n_trials=-1)


def test_failing_trials_are_recorded_and_the_study_goes_on():
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 1:
            raise RuntimeError("boom")
        if trial.number == 2:
            trial.suggest_float("bad", 2.0, 1.0)  # empty range
        if trial.number == 3:
            return float("nan")
        if trial.number == 4:
            return "not a number"
        return x

    study = ah.create_study(sampler=ah.RandomSampler(seed=0))
    with pytest.warns(RuntimeWarning, match="trial 1 failed: RuntimeError: boom"):
        study.optimize(objective, n_trials=6)
    states = [t.state for t in study.trials]
    F, C = ah.TrialState.FAIL, ah.TrialState.COMPLETE
    assert states == [C, F, F, F, F, C]
    assert "boom" in study.trials[1].error and "empty range" in study.trials[2].error
    assert study.best_trial.number in (0, 5)


def test_storage_saves_after_each_trial_and_resumes(tmp_path):
    path = tmp_path / "study.json"

    def objective(trial):
        if trial.number > 0:  # the file holds every finished trial
            assert len(json.loads(path.read_text())["trials"]) == trial.number
        return quad(trial)

    a = ah.create_study(sampler=ah.GPSampler(seed=5), storage=path)
    a.optimize(objective, n_trials=12)
    b = ah.create_study(sampler=ah.GPSampler(seed=5), storage=str(path))
    assert [t.params for t in b.trials] == [t.params for t in a.trials]
    b.optimize(objective, n_trials=4)
    assert len(b.trials) == 16 and [t.number for t in b.trials] == list(range(16))
    straight = ah.create_study(sampler=ah.GPSampler(seed=5))
    straight.optimize(quad, n_trials=16)
    assert [t.params for t in straight.trials] == [t.params for t in b.trials]
    c = ah.load_study(path)
    assert c.best_value == b.best_value and len(c.trials) == 16
    assert [p.name for p in tmp_path.iterdir()] == ["study.json"]


def test_corrupted_study_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "deepseek-autohyper-study", "trials": [')
    with pytest.raises(ValueError, match="broken.json.*corrupted"):
        ah.create_study(storage=path)
    with pytest.raises(ValueError, match="broken.json"):
        ah.load_study(path)
    with pytest.raises(FileNotFoundError):
        ah.load_study(tmp_path / "missing.json")


def test_pruning_with_report_and_should_prune():
    # Curves: the final value is the slope; bad slopes are visible from the first steps.
    def objective(trial):
        slope = trial.suggest_float("slope", 0.0, 1.0)
        for step in range(10):
            trial.report(slope * (10 - step), step)
            if trial.should_prune():
                raise ah.TrialPruned()
        return slope

    for pruner in (ah.MedianPruner(n_startup_trials=3), ah.SuccessiveHalvingPruner(reduction_factor=2)):
        study = ah.create_study(sampler=ah.RandomSampler(seed=2), pruner=pruner)
        study.optimize(objective, n_trials=30)
        pruned = [t for t in study.trials if t.state == ah.TrialState.PRUNED]
        done = [t for t in study.trials if t.state == ah.TrialState.COMPLETE]
        assert len(pruned) >= 8, (pruner, len(pruned))
        # A pruned trial was worse than the best trial finished before it.
        for t in pruned:
            before = [d.value for d in done if d.number < t.number]
            assert before and t.params["slope"] > min(before)
        assert pruned[0].intermediate_values and max(pruned[0].intermediate_values) < 9
    # Without a pruner nothing is pruned.
    study = ah.create_study(sampler=ah.RandomSampler(seed=2))
    study.optimize(objective, n_trials=10)
    assert all(t.state == ah.TrialState.COMPLETE for t in study.trials)


def test_timeout_and_parallel_jobs():
    study = ah.create_study(sampler=ah.RandomSampler(seed=0))
    t0 = time.monotonic()
    study.optimize(lambda t: (time.sleep(0.05), quad(t))[1], timeout=0.5)
    assert 0.5 <= time.monotonic() - t0 < 2.0 and 3 <= len(study.trials) <= 12
    study = ah.create_study(sampler=ah.TPESampler(seed=0))
    study.optimize(lambda t: (time.sleep(0.01), quad(t))[1], n_trials=24, n_jobs=4)
    assert len(study.trials) == 24 and sorted(t.number for t in study.trials) == list(range(24))
    assert all(t.state == ah.TrialState.COMPLETE for t in study.trials)


def test_ask_tell_and_report_files(tmp_path):
    study = ah.create_study(sampler=ah.TPESampler(seed=0))
    for _ in range(5):
        t = study.ask()
        study.tell(t, quad(t))
    t = study.ask()
    study.tell(t, state=ah.TrialState.PRUNED)
    assert study.trials[-1].state == ah.TrialState.PRUNED
    with pytest.raises(RuntimeError, match="already finished"):
        study.tell(t, 1.0)
    path = tmp_path / "report.html"
    study.write_report(path)
    html = path.read_text()
    assert f"Best trial <b>{study.best_trial.number}</b>" in html
    assert html.count("<circle") == 5 and "<svg" in html
    assert "<- best" in study.trials_table()


def test_not_worse_than_optuna_on_branin_small():
    """A small version of bench/autohyper_vs_optuna.py (the full 20 x 100 table is there)."""
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def branin(t):
        x1, x2 = t.suggest_float("x1", -5.0, 10.0), t.suggest_float("x2", 0.0, 15.0)
        b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
        return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10

    ours, theirs = [], []
    for seed in range(5):
        s = ah.create_study(sampler=ah.GPSampler(seed=seed))
        s.optimize(branin, n_trials=30)
        ours.append(s.best_value)
        o = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        o.optimize(branin, n_trials=30)
        theirs.append(o.best_value)
    assert sorted(ours)[2] <= sorted(theirs)[2], (ours, theirs)
