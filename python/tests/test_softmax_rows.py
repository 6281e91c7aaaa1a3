"""Softmax, log-softmax and cross-entropy over rows of every length against PyTorch: short
rows (fewer than 32 classes) take a blocked kernel (one vector exp over many rows), longer
ones the row kernel; both are checked forward and backward, in float32 and float64, with
masked (-inf) entries, a fully masked row, ignore_index and label smoothing, on sizes that
run on one thread and on several."""
import numpy as np
import pytest

import deepseek
import deepseek.nn.functional as F

torch = pytest.importorskip("torch")

SIZES = [(1, 1), (7, 2), (5, 3), (33, 10), (9000, 10), (40, 17), (2000, 31), (64, 32),
         (64, 33), (1200, 65)]


def _data(rows, n, dt, seed):
    g = np.random.default_rng(seed)
    x = g.standard_normal((rows, n)).astype(dt) * 3
    if n > 2:
        x[g.random((rows, n)) < 0.1] = -np.inf  # masked entries (attention-style)
        x[:, 0] = np.where(np.isinf(x[:, 0]), 0.5, x[:, 0])  # every row keeps one value
    return x


def _tol(dt):
    return 1e-5 if dt == np.float32 else 1e-12


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("rows,n", SIZES)
def test_softmax_and_log_softmax_rows_match_torch(rows, n, dt):
    x = _data(rows, n, dt, rows * 100 + n)
    cot = np.random.default_rng(1).standard_normal((rows, n)).astype(dt)
    for fn, tfn in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax)):
        xd = deepseek.tensor(x).requires_grad_(True)
        xt = torch.tensor(x, requires_grad=True)
        y, yt = fn(xd, -1), tfn(xt, -1)
        fin = np.isfinite(yt.detach().numpy())
        np.testing.assert_allclose(y.detach().numpy()[fin], yt.detach().numpy()[fin],
                                   rtol=_tol(dt), atol=_tol(dt))
        assert (np.isfinite(y.detach().numpy()) == fin).all()
        (y * deepseek.tensor(np.where(fin, cot, 0))).sum().backward()
        (yt * torch.tensor(np.where(fin, cot, 0))).sum().backward()
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=10 * _tol(dt),
                                   atol=10 * _tol(dt))


def test_fully_masked_row_gives_nan_like_torch():
    x = np.full((3, 10), -np.inf, np.float32)
    x[1] = np.arange(10)
    y = F.softmax(deepseek.tensor(x), -1).numpy()
    yt = torch.softmax(torch.tensor(x), -1).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(yt))
    np.testing.assert_allclose(y[1], yt[1], rtol=1e-6)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("rows,n", [s for s in SIZES if s[1] > 1])
@pytest.mark.parametrize("smoothing,reduction", [(0.0, "mean"), (0.1, "sum"), (0.0, "none")])
def test_cross_entropy_rows_match_torch(rows, n, dt, smoothing, reduction):
    g = np.random.default_rng(rows + n)
    x = (g.standard_normal((rows, n)) * 3).astype(dt)
    t = g.integers(0, n, rows)
    t[::5] = 1  # ignore_index below
    xd, xt = deepseek.tensor(x).requires_grad_(True), torch.tensor(x, requires_grad=True)
    kw = dict(ignore_index=1, label_smoothing=smoothing, reduction=reduction)
    loss = F.cross_entropy(xd, deepseek.tensor(t), **kw)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t), **kw)
    np.testing.assert_allclose(loss.detach().numpy(), lt.detach().numpy(), rtol=_tol(dt),
                               atol=_tol(dt))
    w = np.random.default_rng(2).standard_normal(lt.shape).astype(dt)
    (loss * deepseek.tensor(w)).sum().backward()
    (lt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=10 * _tol(dt),
                               atol=10 * _tol(dt))
