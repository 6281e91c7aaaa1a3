"""Shared helper of the test_api_coverage_* files: run the same call in deepseek and in
PyTorch on the same random inputs, compare the outputs and (for float inputs that require
grad) the gradients of ``sum(output * cotangent)``."""

import numpy as np

import deepseek as ds

TOL = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-11)}


def arr(shape, dtype="float32", low=-2.0, high=2.0, seed=0, kind="float"):
    """A numpy array of random inputs: kind ``float`` (uniform), ``pos`` (in [0.1, high]),
    ``int`` (integers in [low, high)), ``bool``, ``sign`` (+-1)."""
    r = np.random.default_rng(seed)
    if kind == "int":
        return r.integers(int(low), int(high), size=shape).astype(np.int64)
    if kind == "bool":
        return r.random(shape) > 0.5
    if kind == "sign":
        return np.where(r.random(shape) > 0.5, 1.0, -1.0).astype(dtype)
    if kind == "pos":
        return r.uniform(0.1, high, size=shape).astype(dtype)
    return r.uniform(low, high, size=shape).astype(dtype)


class const:
    """An input array that does not require grad (targets and the like)."""

    def __init__(self, a):
        self.a = a


def _to(lib, a, grad):
    if isinstance(a, const):
        return lib.tensor(a.a.copy())
    if isinstance(a, np.ndarray):
        t = lib.tensor(a.copy())
        if grad and a.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    if isinstance(a, (list, tuple)) and a and all(isinstance(v, np.ndarray) for v in a):
        return type(a)(_to(lib, v, grad) for v in a)
    return a


def _flat(out):
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res += _flat(o)
        return res
    return [out]


def _np(t):
    if isinstance(t, (bool, int, float)):
        return np.asarray(t)
    if type(t).__module__.startswith("torch"):
        return t.detach().numpy(force=True)  # force: PyTorch's ZeroTensor gradients
    return t.detach().numpy()


def check(fn_ds, fn_torch, args, kwargs=None, grad=True, dtype="float32", rtol=None, atol=None,
          torch=None):
    """Compare ``fn_ds(*args_ds, **kwargs)`` with ``fn_torch(*args_torch, **kwargs)``;
    numpy arrays in ``args`` become tensors on each side (float ones require grad when
    ``grad``)."""
    import torch as _torch

    torch = torch or _torch
    kwargs = kwargs or {}
    r0, a0 = TOL[dtype]
    rtol, atol = rtol or r0, atol or a0
    a_ds = [_to(ds, a, grad) for a in args]
    a_t = [_to(torch, a, grad) for a in args]
    kw_ds = {k: _to(ds, v, False) for k, v in kwargs.items()}
    kw_t = {k: _to(torch, v, False) for k, v in kwargs.items()}
    out_ds, out_t = _flat(fn_ds(*a_ds, **kw_ds)), _flat(fn_torch(*a_t, **kw_t))
    assert len(out_ds) == len(out_t)
    for o_d, o_t in zip(out_ds, out_t):
        if isinstance(o_t, torch.Tensor):
            assert tuple(o_d.shape) == tuple(o_t.shape), (tuple(o_d.shape), tuple(o_t.shape))
            assert str(o_d.dtype).split(".")[-1] == str(o_t.dtype).split(".")[-1], \
                (o_d.dtype, o_t.dtype)
        np.testing.assert_allclose(_np(o_d), _np(o_t), rtol=rtol, atol=atol, equal_nan=True)
    if not grad:
        return
    leaves = [(d, t) for d, t in zip(_flat(a_ds), _flat(a_t))
              if isinstance(t, torch.Tensor) and t.requires_grad]
    outs = [(d, t) for d, t in zip(out_ds, out_t)
            if isinstance(t, torch.Tensor) and t.requires_grad]
    if not leaves or not outs:
        return
    rng = np.random.default_rng(1)
    loss_d, loss_t = 0, 0
    for d, t in outs:
        c = rng.uniform(0.5, 1.5, size=tuple(t.shape)).astype(str(t.dtype).split(".")[-1])
        loss_d = loss_d + (d * ds.tensor(c)).sum()
        loss_t = loss_t + (t * torch.tensor(c)).sum()
    loss_t.backward()
    loss_d.backward()
    for d, t in leaves:
        if t.grad is None or (d.grad is None and not _np(t.grad).any()):
            assert d.grad is None or float(d.grad.abs().sum()) == 0.0
            continue
        assert d.grad is not None, "no gradient reached a deepseek input"
        np.testing.assert_allclose(_np(d.grad), _np(t.grad), rtol=rtol * 10, atol=atol * 10)


def f64(v):
    """``v`` (an array, a const, a list/dict of them) with float arrays in float64."""
    if isinstance(v, const):
        return const(f64(v.a))
    if isinstance(v, np.ndarray):
        return v.astype("float64") if v.dtype.kind == "f" else v
    if isinstance(v, list):
        return [f64(a) for a in v]
    if isinstance(v, dict):
        return {k: f64(a) for k, a in v.items()}
    return v
