"""Helpers for the deepseek.func tests: the same inputs as deepseek and torch tensors, and
comparison of (nested) results."""

import numpy as np

import deepseek as ds


def arr(shape, seed=0, dtype=np.float32, low=None):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    if low is not None:
        a = np.abs(a) + low
    return a


def both(*arrays):
    """``(deepseek_tensors, torch_tensors)`` of numpy arrays."""
    import torch

    return ([ds.tensor(a) for a in arrays], [torch.tensor(a) for a in arrays])


def to_np(x):
    if hasattr(x, "detach"):
        x = x.detach()
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def close(a, b, rtol=1e-4, atol=1e-5):
    """Asserts that two results (tensors or nested tuples/lists/dicts) agree."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (a.keys(), b.keys())
        for k in a:
            close(a[k], b[k], rtol, atol)
        return
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (type(b), len(a))
        for x, y in zip(a, b):
            close(x, y, rtol, atol)
        return
    x, y = to_np(a), to_np(b)
    assert tuple(x.shape) == tuple(y.shape), (x.shape, y.shape)
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)
