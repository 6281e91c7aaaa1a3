"""Rust errors become the fitting Python exceptions; panics do not kill the interpreter."""

import pytest

import deepseek as ds
import deepseek.nn.functional as F


def test_error_classes():
    with pytest.raises(ValueError, match="shape"):
        ds.ones(2, 3) + ds.ones(4)
    with pytest.raises(ValueError):
        ds.ones(2, 3) @ ds.ones(2, 3)
    with pytest.raises(TypeError, match="dtype"):
        F.embedding(ds.ones(2), ds.ones(3, 2))
    with pytest.raises(IndexError):
        ds.ones(2, 3).index_select(0, ds.tensor([5]))
    with pytest.raises(IndexError):
        ds.ones(2).sum(dim=3)
    with pytest.raises(ValueError):
        ds.ones(6).view(4, -1)
    with pytest.raises(RuntimeError, match="autograd"):
        ds.ones(2).sum().backward()  # nothing requires grad
    with pytest.raises(ValueError):
        F.dropout(ds.ones(2), p=1.5)
    with pytest.raises(TypeError):
        ds.ones(2) + "a"
    with pytest.raises(OSError):
        ds.load_file("/nonexistent/file.safetensors")
    with pytest.raises(TypeError):
        ds.tensor(["a"])
    with pytest.raises(ValueError):
        ds.tensor([[1, 2], [3]])


def test_panic_becomes_exception():
    from deepseek import _C

    with pytest.raises(BaseException) as e:
        _C._panic_for_test("deliberate")
    assert "deliberate" in str(e.value)
    assert type(e.value).__name__ == "PanicException"
    assert (ds.ones(2) + 1).tolist() == [2, 2]  # the interpreter goes on
