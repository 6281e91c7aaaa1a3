"""API-level lessons from running public PyTorch programs unmodified (pytorch/examples @77f55b9,
issue 15; bench/RESULTS.md): each behaviour a program relied on, checked against the installed
PyTorch."""

import os
import pickle
import warnings

import numpy as np
import pytest

import deepseek as ds

torch = pytest.importorskip("torch")

_NP_GLOBALS = [np._core.multiarray._reconstruct, np.ndarray, np.dtype,
               type(np.dtype(np.float64))]


@pytest.fixture
def numpy_file(tmp_path, monkeypatch):
    """A file as time_sequence_prediction's generate_sine_wave.py writes it: torch.save of a
    numpy array (no tensor in it)."""
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    path = tmp_path / "traindata.pt"
    arr = np.sin(np.arange(12, dtype=np.float64).reshape(3, 4) / 20.0)
    torch.save(arr, open(path, "wb"))
    return path, arr


def _outcome(load, *args, **kwargs):
    """'ok' with the value, or the exception's type name; the warnings raised."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            out = ("ok", load(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 -- the type is what is compared
            out = (type(e).__name__, None)
    return out, sorted({type(x.message).__name__ for x in w
                        if "WEIGHTS_ONLY" in str(x.message)})


def _both(path, **kwargs):
    (t_kind, t_val), t_warn = _outcome(torch.load, path, **kwargs)
    (d_kind, d_val), d_warn = _outcome(ds.load, path, **kwargs)
    assert d_kind == t_kind, (kwargs, t_kind, d_kind)
    assert d_warn == t_warn, (kwargs, t_warn, d_warn)
    if t_kind == "ok":
        np.testing.assert_array_equal(np.asarray(d_val), np.asarray(t_val))
    return t_kind


def test_load_numpy_array_is_refused_by_default_like_torch(numpy_file):
    path, _ = numpy_file
    assert _both(path) == "UnpicklingError"
    assert _both(path, weights_only=True) == "UnpicklingError"
    with pytest.raises(pickle.UnpicklingError, match="numpy._core.multiarray._reconstruct"):
        ds.load(path)


def test_load_numpy_array_weights_only_false_and_pickle_module(numpy_file):
    path, arr = numpy_file
    assert _both(path, weights_only=False) == "ok"
    # an explicit pickle_module makes the default weights_only=False
    assert _both(path, pickle_module=pickle) == "ok"
    assert _both(path, pickle_module=pickle, weights_only=True) == "RuntimeError"
    np.testing.assert_array_equal(ds.load(path, weights_only=False), arr)


def test_load_numpy_array_with_safe_globals(numpy_file):
    path, arr = numpy_file
    # one global allowed is not enough: ndarray is refused next, in both
    with torch.serialization.safe_globals(_NP_GLOBALS[:1]), \
            ds.serialization.safe_globals(_NP_GLOBALS[:1]):
        assert _both(path) == "UnpicklingError"
    with torch.serialization.safe_globals(_NP_GLOBALS), \
            ds.serialization.safe_globals(_NP_GLOBALS):
        assert _both(path) == "ok"
    assert _both(path) == "UnpicklingError"  # the context manager forgot them again


@pytest.mark.parametrize("value", ["1", "true", "YES", "y"])
def test_force_no_weights_only_env(numpy_file, monkeypatch, value):
    path, _ = numpy_file
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", value)
    assert _both(path) == "ok"  # with a UserWarning naming the variable, in both
    # an explicit weights_only is left alone
    assert _both(path, weights_only=True) == "UnpicklingError"


def test_force_weights_only_env(numpy_file, monkeypatch):
    path, _ = numpy_file
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    # overrides even an explicit weights_only=False
    assert _both(path, weights_only=False) == "UnpicklingError"
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0")
    assert _both(path, weights_only=False) == "ok"
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    assert _both(path) == "RuntimeError"  # both set


def test_state_dict_still_loads_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    path = tmp_path / "sd.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    sd = ds.load(path)
    assert sorted(sd) == ["bias", "weight"] and tuple(sd["weight"].shape) == (2, 3)
