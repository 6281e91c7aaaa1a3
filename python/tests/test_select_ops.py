"""roll, diag, repeat_interleave, nonzero/argwhere, masked_select, unique, scatter/scatter_,
index_add_ and friends against PyTorch (values, dtypes and gradients)."""

import numpy as np
import pytest

import deepseek

torch = pytest.importorskip("torch")


def _pair(shape, seed, dtype="float32"):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(dtype)
    return deepseek.tensor(a), torch.tensor(a)


def _same(d, t, tol=1e-6):
    d = d.detach().numpy() if isinstance(d, deepseek.Tensor) else np.asarray(d)
    t = t.detach().numpy()
    assert d.shape == t.shape, (d.shape, t.shape)
    assert str(d.dtype) == str(t.dtype), (d.dtype, t.dtype)
    np.testing.assert_allclose(d, t, rtol=tol, atol=tol)


def _grad_check(fd, ft, shape, seed=0):
    """Forward and input gradient of a differentiable op against PyTorch."""
    xd, xt = _pair(shape, seed)
    xd.requires_grad_()
    xt.requires_grad_()
    yd, yt = fd(xd), ft(xt)
    _same(yd, yt)
    w = np.random.default_rng(seed + 1).standard_normal(tuple(yt.shape)).astype("float32")
    (yd * deepseek.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _same(xd.grad, xt.grad)


@pytest.mark.parametrize("shifts,dims", [(2, 0), (-1, 1), ((1, -2), (0, 1)), (5, None),
                                         ((3,), (-1,)), (0, 0)])
def test_roll(shifts, dims):
    _grad_check(lambda x: deepseek.roll(x, shifts, dims), lambda x: torch.roll(x, shifts, dims),
                (3, 4))
    x = deepseek.arange(6).reshape(2, 3)
    _same(x.roll(shifts, dims), torch.arange(6).reshape(2, 3).roll(shifts, dims))


@pytest.mark.parametrize("shape,k", [((4,), 0), ((3,), 2), ((3,), -1), ((3, 5), 0),
                                     ((3, 5), 2), ((4, 3), -2), ((2, 3), 7)])
def test_diag(shape, k):
    _grad_check(lambda x: deepseek.diag(x, k), lambda x: torch.diag(x, k), shape)


@pytest.mark.parametrize("repeats,dim", [(2, None), (3, 0), (2, 1), ([1, 0, 2], 0),
                                         ([2, 1, 1, 3], 1), ([2], 1)])
def test_repeat_interleave(repeats, dim):
    rd = deepseek.tensor(repeats) if isinstance(repeats, list) else repeats
    rt = torch.tensor(repeats) if isinstance(repeats, list) else repeats
    _grad_check(lambda x: x.repeat_interleave(rd, dim), lambda x: x.repeat_interleave(rt, dim),
                (3, 4))
    _same(deepseek.repeat_interleave(deepseek.tensor([2, 0, 3])),
          torch.repeat_interleave(torch.tensor([2, 0, 3])))


def test_nonzero_argwhere_masked_select():
    a = np.array([[0, 1.5, 0], [2, 0, -3]], dtype="float32")
    d, t = deepseek.tensor(a), torch.tensor(a)
    _same(d.nonzero(), t.nonzero())
    _same(deepseek.argwhere(d), torch.argwhere(t))
    for x, y in zip(deepseek.nonzero(d, as_tuple=True), torch.nonzero(t, as_tuple=True)):
        _same(x, y)
    _same(deepseek.tensor(3.0).nonzero(), torch.tensor(3.0).nonzero())
    _same(deepseek.zeros(0, 2).nonzero(), torch.zeros(0, 2).nonzero())
    xd, xt = _pair((2, 3), 3)
    xd.requires_grad_()
    xt.requires_grad_()
    md, mt = d > 0, t > 0
    _same(xd.masked_select(md), xt.masked_select(mt))
    # Broadcast mask, and the gradient lands on the selected places only.
    row_d, row_t = deepseek.tensor([True, False, True]), torch.tensor([True, False, True])
    yd, yt = deepseek.masked_select(xd, row_d), torch.masked_select(xt, row_t)
    _same(yd, yt)
    (yd * 2).sum().backward()
    (yt * 2).sum().backward()
    _same(xd.grad, xt.grad)
    with pytest.raises(Exception, match="bool"):
        xd.masked_select(d)


@pytest.mark.parametrize("data", [[3, 1, 2, 3, 1, 1], [[2.5, -1.0], [2.5, 0.0]], [True, False, True],
                                  []])
def test_unique(data):
    d, t = deepseek.tensor(data), torch.tensor(data)
    _same(deepseek.unique(d), torch.unique(t))
    vd, id_, cd = deepseek.unique(d, return_inverse=True, return_counts=True)
    vt, it, ct = torch.unique(t, return_inverse=True, return_counts=True)
    _same(vd, vt)
    _same(id_, it)
    _same(cd, ct)
    vd, cd = d.unique(return_counts=True)
    vt, ct = t.unique(return_counts=True)
    _same(cd, ct)
    with pytest.raises(NotImplementedError, match="dim"):
        d.unique(dim=0)


def test_scatter_and_inplace_variants():
    idx = [[0, 1, 2, 0], [2, 0, 0, 1]]
    xd, xt = _pair((3, 4), 5)
    sd, st = _pair((2, 4), 6)
    for x in (xd, xt, sd, st):
        x.requires_grad_()
    id_, it = deepseek.tensor(idx), torch.tensor(idx)
    yd = xd.scatter(0, id_, sd)
    yt = xt.scatter(0, it, st)
    _same(yd, yt)
    w = np.random.default_rng(9).standard_normal((3, 4)).astype("float32")
    (yd * deepseek.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    _same(xd.grad, xt.grad)
    _same(sd.grad, st.grad)
    _same(deepseek.scatter(xd.detach(), 1, id_[:, :2], 7.5), torch.scatter(xt.detach(), 1, it[:, :2], 7.5))
    _same(xd.detach().scatter(0, id_, sd.detach(), reduce="add"),
          xt.detach().scatter(0, it, st.detach(), reduce="add"))
    a, b = xd.detach().clone(), xt.detach().clone()
    a.scatter_(0, id_, sd.detach())
    b.scatter_(0, it, st.detach())
    _same(a, b)
    a.scatter_add_(0, id_, sd.detach())
    b.scatter_add_(0, it, st.detach())
    _same(a, b)
    rows = [2, 0]
    a.index_add_(0, deepseek.tensor(rows), sd.detach(), alpha=0.5)
    b.index_add_(0, torch.tensor(rows), st.detach(), alpha=0.5)
    _same(a, b)
    with pytest.raises(RuntimeError, match="leaf"):
        xd.scatter_(0, id_, sd)
    with pytest.raises(Exception, match="out of range|index"):
        xd.detach().scatter(0, deepseek.tensor([[5, 0, 0, 0]]), sd.detach()[:1])


def test_nan_methods_and_clamp_():
    a = np.array([1.0, np.nan, np.inf, -np.inf], dtype="float32")
    d, t = deepseek.tensor(a), torch.tensor(a)
    _same(d.isnan(), t.isnan())
    _same(d.isinf(), t.isinf())
    _same(d.isfinite(), t.isfinite())
    _same(d.nan_to_num(), t.nan_to_num())
    x = deepseek.tensor([-2.0, 0.5, 3.0])
    deepseek.clamp_(x, -1.0, 1.0)
    _same(x, torch.tensor([-1.0, 0.5, 1.0]))


def test_bad_arguments():
    x = deepseek.randn(2, 3)
    with pytest.raises(Exception, match="same length"):
        x.roll((1, 2), (0,))
    with pytest.raises(Exception, match="1-D or 2-D"):
        deepseek.randn(2, 2, 2).diag()
    with pytest.raises(Exception, match="negative"):
        x.repeat_interleave(-1)
    with pytest.raises(Exception, match="same size"):
        x.repeat_interleave(deepseek.tensor([1, 2]), 1)
