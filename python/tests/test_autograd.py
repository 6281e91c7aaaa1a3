"""Autograd from Python: backward, grad accumulation, no_grad, hooks, autograd.grad."""

import pytest

import deepseek as ds


def test_backward_and_accumulation():
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.tolist() == [2, 4, 6]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5, 7, 9]
    x.grad = None
    assert x.grad is None
    assert x.is_leaf and not (x * 2).is_leaf and (x * 2).grad_fn is not None


def test_backward_with_gradient_and_retain_graph():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.backward(ds.tensor([1.0, 10.0]), retain_graph=True)
    assert x.grad.tolist() == [2, 20]
    y.backward(ds.tensor([1.0, 1.0]))
    assert x.grad.tolist() == [4, 22]
    with pytest.raises(RuntimeError):
        y.backward(ds.tensor([1.0, 1.0]))
    with pytest.raises(RuntimeError):
        (x * 2).backward()  # non-scalar without a gradient


def test_no_grad_and_enable_grad():
    x = ds.ones(2, requires_grad=True)
    with ds.no_grad():
        y = x * 2
        assert not ds.is_grad_enabled()
        with ds.enable_grad():
            z = x * 2
    assert ds.is_grad_enabled()
    assert not y.requires_grad and z.requires_grad

    @ds.no_grad()
    def f(t):
        return t * 3

    assert not f(x).requires_grad
    with ds.set_grad_enabled(False):
        assert not (x * 1).requires_grad
    assert ds.is_grad_enabled()


def test_requires_grad_property_and_detach():
    x = ds.ones(2)
    assert not x.requires_grad
    x.requires_grad = True
    assert x.requires_grad
    y = ds.zeros(2).requires_grad_()
    assert y.requires_grad
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    with pytest.raises(TypeError):
        ds.tensor([1, 2]).requires_grad_()


def test_register_hook():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    y = ds.tensor([3.0], requires_grad=True)
    y.register_hook(lambda g: g * 10)
    (x.sum() + (y * 2).sum()).backward()
    assert seen == [[1.0, 1.0]] and y.grad.tolist() == [20.0]


def test_hook_exception_becomes_python_error():
    x = ds.tensor([1.0], requires_grad=True)

    def bad(g):
        raise ValueError("boom")

    x.register_hook(bad)
    with pytest.raises(RuntimeError, match="boom"):
        (x * 2).sum().backward()


def test_autograd_grad_and_higher_order():
    x = ds.tensor([2.0], requires_grad=True)
    y = x ** 3
    (g,) = ds.autograd.grad(y.sum(), x, create_graph=True)
    assert g.tolist() == [12.0]
    (g2,) = ds.autograd.grad(g.sum(), x)
    assert g2.tolist() == [12.0]
    assert x.grad is None
    z = ds.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        ds.autograd.grad((x * 2).sum(), [x, z])
    r = ds.autograd.grad((x * 2).sum(), [x, z], allow_unused=True)
    assert r[1] is None


def test_retain_grad_nonleaf():
    x = ds.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    y.sum().backward()
    assert y.grad.tolist() == [1, 1]


def test_inplace_in_the_graph():
    w = ds.tensor([1.0, 2.0], requires_grad=True)
    h = w * 3
    h += 1  # a non-leaf: rebound to the result, gradients flow
    h.mul_(2)
    h.sum().backward()
    assert h.tolist() == [8.0, 14.0] and w.grad.tolist() == [6.0, 6.0]
    buf = ds.zeros(2)
    buf.add_(w)  # a plain tensor joins the graph
    assert buf.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1.0)
    with ds.no_grad():
        w.add_(1.0)
    assert w.tolist() == [2.0, 3.0] and w.is_leaf


def test_hook_handle_remove_and_format():
    x = ds.tensor([1.0], requires_grad=True)
    calls = []
    h = x.register_hook(lambda g: calls.append(1))
    (x * 2).sum().backward()
    h.remove()
    (x * 2).sum().backward()
    assert calls == [1]
    loss = (x * 2).sum()
    assert f"{loss:.3f}" == "2.000" and f"{ds.tensor(3):d}" == "3"
    import numpy as np

    assert isinstance(np.float32(2.0) * ds.ones(2), ds.Tensor)


def test_custom_function():
    class Exp(ds.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class RoundSTE(ds.autograd.Function):
        """Straight-through rounding: identity gradient."""

        @staticmethod
        def forward(ctx, x, scale):
            ctx.scale = scale
            return (x * scale).round() / scale

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    x = ds.tensor([0.0, 1.0, 2.0], requires_grad=True)
    y = Exp.apply(x)
    assert not y.is_leaf
    (y * ds.tensor([1.0, 2.0, 3.0])).sum().backward(retain_graph=True)
    import math

    assert ds.allclose(x.grad, ds.tensor([1.0, 2 * math.e, 3 * math.e ** 2]))
    x.grad = None
    y.sum().backward()
    assert ds.allclose(x.grad, x.detach().exp())
    w = ds.tensor([0.26, 0.74], requires_grad=True)
    q = RoundSTE.apply(w, 2.0)
    assert q.tolist() == [0.5, 0.5]
    (q * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]
    with ds.no_grad():
        assert not Exp.apply(x).requires_grad


def test_setitem_on_tensor_in_graph():
    w = ds.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    h = w * 2
    h[:, 0] = 0.0
    h[h > 7] = -1.0
    assert h.tolist() == [[0.0, 4.0], [0.0, -1.0]]
    h.sum().backward()
    assert w.grad.tolist() == [[0.0, 2.0], [0.0, 0.0]]
    g = w * 1
    with pytest.raises(NotImplementedError):
        g[0] = w[1]


def test_threads_run_forward_backward_and_steps_concurrently():
    import threading

    errors = []

    def work(seed):
        try:
            ds.manual_seed(seed)
            m = ds.nn.LSTM(8, 16)
            opt = ds.optim.Adam(m.parameters(), lr=1e-2)
            x = ds.randn(5, 3, 8)
            for _ in range(10):
                out, _ = m(x)
                y = ds.ones(1, requires_grad=True)
                y.register_hook(lambda g: g * 1)
                opt.zero_grad()
                (out.sum() + (y * 2).sum()).backward()
                opt.step()
                with ds.no_grad():
                    assert not (x * 2).requires_grad
        except Exception as e:  # collected and reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and errors == []


def test_backward_refuses_a_saved_tensor_modified_in_place():
    w = ds.ones(3, requires_grad=True)
    a = ds.tensor([1.0, 2.0, 3.0])
    v = a._version
    loss = (w * a).sum()
    with ds.no_grad():
        a.mul_(2.0)
    assert a._version > v
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    # numpy writes go around the counter, as in PyTorch; in-place ops after backward are fine
    b = ds.tensor([1.0, 2.0, 3.0])
    (w * b).sum().backward()
    b.add_(1.0)
    assert w.grad.tolist() == [1.0, 2.0, 3.0]


def test_grad_mode_decorators_keep_their_mode():
    """`@inference_mode(False)` keeps gradients on, `@no_grad` works without parentheses,
    and the mode before the call is restored (also after an exception)."""
    x = ds.ones(2, requires_grad=True)

    @ds.inference_mode(False)
    def on():
        return ds.is_grad_enabled()

    @ds.inference_mode()
    def off():
        return ds.is_grad_enabled()

    @ds.no_grad
    def bare():
        return (x * 2).requires_grad

    @ds.enable_grad()
    def raises():
        raise KeyError("x")

    with ds.no_grad():
        assert on() is True
        assert ds.is_grad_enabled() is False
    assert off() is False and ds.is_grad_enabled() is True
    assert bare() is False and ds.is_grad_enabled() is True
    with ds.no_grad():
        with pytest.raises(KeyError):
            raises()
        assert ds.is_grad_enabled() is False


def test_trainer_evaluate_restores_the_model_mode():
    from deepseek.trainer import Trainer
    m = ds.nn.Linear(3, 1)
    t = Trainer(m, ds.optim.SGD(m.parameters(), lr=0.1), loss_fn=ds.nn.MSELoss())
    data = [(ds.ones(4, 3), ds.zeros(4, 1))]
    m.eval()
    t.evaluate(data)
    assert m.training is False
    m.train()
    t.evaluate(data)
    assert m.training is True


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_backward_matches_torch(fn, dim, dtype):
    """The fused softmax/log-softmax backward (eager, no create_graph) and the composed one
    (create_graph: differentiable again) against PyTorch, any dim, a strided gradient."""
    torch = pytest.importorskip("torch")
    import numpy as np
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((5, 7, 33)).astype(dtype)
    gv = rng.standard_normal((33, 7, 5)).astype(dtype)
    x_t = torch.tensor(xv, requires_grad=True)
    y_t = getattr(torch, fn)(x_t, dim)
    (gx_t,) = torch.autograd.grad(y_t, x_t, torch.tensor(gv).permute(2, 1, 0), create_graph=True)
    (gg_t,) = torch.autograd.grad((gx_t * gx_t).sum(), x_t)
    x = ds.tensor(xv, requires_grad=True)
    y = getattr(ds, fn)(x, dim)
    g = ds.tensor(gv).permute(2, 1, 0)  # a non-contiguous output gradient
    (gx,) = ds.autograd.grad(y, x, g)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(gx.numpy(), gx_t.detach().numpy(), rtol=tol, atol=tol)
    y = getattr(ds, fn)(x, dim)
    (gx2,) = ds.autograd.grad(y, x, g, create_graph=True)
    np.testing.assert_allclose(gx2.detach().numpy(), gx_t.detach().numpy(), rtol=tol, atol=tol)
    (gg,) = ds.autograd.grad((gx2 * gx2).sum(), x)
    np.testing.assert_allclose(gg.numpy(), gg_t.numpy(), rtol=10 * tol, atol=10 * tol)


def test_hook_on_dropped_intermediate_still_runs():
    """A hook registered on a non-leaf lives with the graph (PyTorch's behaviour): it runs in
    backward even when nothing holds the tensor any more, and can replace the gradient."""
    seen = []
    x = ds.tensor([1.0, 2.0, 3.0], requires_grad=True)

    def make():
        h = x * 2  # the only handle to h is dropped when make() returns
        h.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
        return (h * h).sum()

    make().backward()
    assert seen == [[4.0, 8.0, 12.0]]
    assert x.grad.tolist() == [80.0, 160.0, 240.0]  # 2 * (10 * 2h) with h = 2x
    # A removed hook does not run.
    seen.clear()
    x.grad = None
    h = x * 2
    handle = h.register_hook(lambda g: seen.append(1))
    handle.remove()
    loss = (h * h).sum()
    del h
    loss.backward()
    assert seen == [] and x.grad.tolist() == [8.0, 16.0, 24.0]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nll_loss_over_log_softmax_matches_torch(reduction, dtype):
    """``nll_loss(log_softmax(x, 1), t)`` (the word-language-model's loss) runs its backward as
    one cross-entropy pass over x; gradients (also of a second use of the log-probabilities,
    and under create_graph) equal PyTorch's, and asking for the log-probabilities' own
    gradient after the loss is refused instead of being silently incomplete."""
    torch = pytest.importorskip("torch")
    import numpy as np
    rng = np.random.default_rng(5)
    xv = rng.standard_normal((6, 11)).astype(dtype)
    tv = np.array([3, 0, 10, -100, 7, 3])
    cot = rng.standard_normal(6).astype(dtype)

    def run(lib, F):
        x = lib.tensor(xv, requires_grad=True)
        lp = F.log_softmax(x, 1)
        l = F.nll_loss(lp, lib.tensor(tv), reduction=reduction)
        l = (l * lib.tensor(cot)).sum() if reduction == "none" else l
        l = l + (lp.exp() ** 2).sum() * 0.25
        (g,) = lib.autograd.grad(l, x, create_graph=True)
        (gg,) = lib.autograd.grad((g * g).sum(), x)
        return l.detach().numpy(), g.detach().numpy(), gg.numpy()

    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip(run(ds, ds.nn.functional), run(torch, torch.nn.functional)):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    x = ds.tensor(xv, requires_grad=True)
    lp = ds.nn.functional.log_softmax(x, 1)
    loss = ds.nn.NLLLoss()(lp, ds.tensor(tv))
    with pytest.raises(RuntimeError, match="fused"):
        lp.retain_grad()
    loss.backward()
    x_t = torch.tensor(xv, requires_grad=True)
    torch.nn.NLLLoss()(torch.log_softmax(x_t, 1), torch.tensor(tv)).backward()
    np.testing.assert_allclose(x.grad.numpy(), x_t.grad.numpy(), rtol=tol, atol=tol)
