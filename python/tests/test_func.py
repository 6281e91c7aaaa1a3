"""deepseek.func autodiff transforms and functional_call against torch.func on the same
inputs: grad / grad_and_value (argnums, has_aux, pytrees), vjp, jvp, jacrev, jacfwd,
hessian, their nestings (grad(grad), vmap(grad) per-example gradients, jacrev(jacrev),
vmap(jacrev)), and functional_call on nn modules."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import deepseek as ds  # noqa: E402
import deepseek.nn.functional as F  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from deepseek import func  # noqa: E402

from _func_util import arr, both, close  # noqa: E402


def f_ds(x, w):
    return (w @ x.tanh()).sin().sum()


def f_t(x, w):
    return (w @ x.tanh()).sin().sum()


X, W = arr((3,)), arr((4, 3), 1)


def test_grad_argnums_and_aux():
    d, t = both(X, W)
    close(func.grad(f_ds)(*d), torch.func.grad(f_t)(*t))
    close(func.grad(f_ds, argnums=1)(*d), torch.func.grad(f_t, argnums=1)(*t))
    close(func.grad(f_ds, argnums=(0, 1))(*d), torch.func.grad(f_t, argnums=(0, 1))(*t))
    close(func.grad(f_ds, argnums=-1)(*d), torch.func.grad(f_t, argnums=-1)(*t))
    g, (v, aux) = func.grad_and_value(lambda x, w: (f_ds(x, w), x * 2), has_aux=True)(*d)
    gt, (vt, auxt) = torch.func.grad_and_value(lambda x, w: (f_t(x, w), x * 2),
                                               has_aux=True)(*t)
    close((g, v, aux), (gt, vt, auxt))
    g, aux = func.grad(lambda x, w: (f_ds(x, w), {"n": x.sum()}), has_aux=True)(*d)
    gt, auxt = torch.func.grad(lambda x, w: (f_t(x, w), {"n": x.sum()}), has_aux=True)(*t)
    close((g, aux), (gt, auxt))
    # the result does not carry a graph, and the inputs are untouched
    assert not g.requires_grad and not d[0].requires_grad


def test_grad_of_pytree_params_and_errors():
    d, t = both(X, W)
    gd = func.grad(lambda p, x: (p["w"] @ x + p["b"]).pow(2).sum())(
        {"w": d[1], "b": ds.ones(4)}, d[0])
    gt = torch.func.grad(lambda p, x: (p["w"] @ x + p["b"]).pow(2).sum())(
        {"w": t[1], "b": torch.ones(4)}, t[0])
    close(gd, gt)
    with pytest.raises(RuntimeError, match="scalar"):
        func.grad(lambda x: x * 2)(d[0])
    with pytest.raises(RuntimeError):
        func.grad(f_ds, argnums=2)(*d)
    # an input the output does not depend on gets a zero gradient
    close(func.grad(lambda x, y: x.sum(), argnums=1)(d[0], d[0]), np.zeros(3, np.float32))


def test_grad_grad_and_mixed_nesting():
    d, t = both(X)
    fd = lambda x: (x.sin() * x).sum()  # noqa: E731
    close(func.grad(lambda x: func.grad(fd)(x).sum())(*d),
          torch.func.grad(lambda x: torch.func.grad(fd)(x).sum())(*t))
    close(func.grad(func.grad(lambda x: x.exp() * x))(ds.tensor(1.5)),
          torch.func.grad(torch.func.grad(lambda x: x.exp() * x))(torch.tensor(1.5)))
    close(func.grad(func.grad(func.grad(lambda x: x.sin() * x)))(ds.tensor(0.7)),
          torch.func.grad(torch.func.grad(torch.func.grad(lambda x: x.sin() * x)))(
              torch.tensor(0.7)))
    # gradients flow to outer autograd when the input requires grad
    x = ds.tensor(X).requires_grad_()
    func.grad(fd)(x).sum().backward()
    xt = torch.tensor(X).requires_grad_()
    torch.func.grad(fd)(xt).sum().backward()
    close(x.grad, xt.grad)


def test_per_sample_grads_vmap_grad_functional_call():
    ds.manual_seed(0)
    model = ds.nn.Sequential(ds.nn.Linear(5, 8), ds.nn.Tanh(), ds.nn.Linear(8, 3))
    tm = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    tm.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in
                        model.state_dict().items()})
    x, y = arr((16, 5)), np.random.default_rng(0).integers(0, 3, 16).astype(np.int64)
    (xd, yd), (xt, yt) = both(x, y)
    pd = {k: v.detach() for k, v in model.named_parameters()}
    pt = {k: v.detach() for k, v in tm.named_parameters()}

    def loss_d(p, a, b):
        out = func.functional_call(model, p, (a.unsqueeze(0),))
        return F.cross_entropy(out, b.unsqueeze(0))

    def loss_t(p, a, b):
        out = torch.func.functional_call(tm, p, (a.unsqueeze(0),))
        return TF.cross_entropy(out, b.unsqueeze(0))

    got = func.vmap(func.grad(loss_d), in_dims=(None, 0, 0))(pd, xd, yd)
    want = torch.func.vmap(torch.func.grad(loss_t), in_dims=(None, 0, 0))(pt, xt, yt)
    close(got, want, rtol=1e-4, atol=1e-5)
    assert func.fallback_counts(reset=True) == {}
    # the per-example gradients average to the full-batch gradient
    full = func.grad(lambda p: F.cross_entropy(func.functional_call(model, p, (xd,)), yd))(pd)
    close({k: v.mean(0) for k, v in got.items()}, full, atol=1e-5)


def test_vjp():
    d, t = both(X, W)
    out, fn = func.vjp(lambda x, w: (w @ x).tanh(), *d)
    outt, fnt = torch.func.vjp(lambda x, w: (w @ x).tanh(), *t)
    v = arr((4,), 5)
    close(out, outt)
    close(fn(ds.tensor(v)), fnt(torch.tensor(v)))
    close(fn(ds.tensor(v) * 2), fnt(torch.tensor(v) * 2))  # reusable
    out, fn, aux = func.vjp(lambda x: ((x * 2, x.sum()), x.mean()), d[0], has_aux=True)
    outt, fnt, auxt = torch.func.vjp(lambda x: ((x * 2, x.sum()), x.mean()), t[0], has_aux=True)
    close((out, aux), (outt, auxt))
    close(fn((ds.ones(3), ds.tensor(2.0))), fnt((torch.ones(3), torch.tensor(2.0))))


def test_jvp():
    d, t = both(X, W)
    v = arr((3,), 7)
    o, j = func.jvp(lambda x: x.exp() * x.sin(), (d[0],), (ds.tensor(v),))
    ot, jt = torch.func.jvp(lambda x: x.exp() * x.sin(), (t[0],), (torch.tensor(v),))
    close((o, j), (ot, jt))
    o, j = func.jvp(lambda x, w: (w @ x, x.sum()), (d[0], d[1]), (ds.tensor(v), ds.ones(4, 3)))
    ot, jt = torch.func.jvp(lambda x, w: (w @ x, x.sum()), (t[0], t[1]),
                            (torch.tensor(v), torch.ones(4, 3)))
    close((o, j), (ot, jt))
    o, j, aux = func.jvp(lambda x: (x.relu(), x * 3), (d[0],), (ds.tensor(v),), has_aux=True)
    ot, jt, auxt = torch.func.jvp(lambda x: (x.relu(), x * 3), (t[0],), (torch.tensor(v),),
                                  has_aux=True)
    close((o, j, aux), (ot, jt, auxt))
    # a function constant in its input
    o, j = func.jvp(lambda x: ds.ones(2) * 3, (d[0],), (ds.tensor(v),))
    close(j, np.zeros(2, np.float32))
    with pytest.raises(RuntimeError):
        func.jvp(lambda x: x, (d[0],), (ds.ones(4),))


def test_jacobians_and_hessian():
    d, t = both(X, W)
    g = lambda x, w: (w @ x).sin()  # noqa: E731
    for jd, jt in ((func.jacrev, torch.func.jacrev), (func.jacfwd, torch.func.jacfwd)):
        close(jd(g)(*d), jt(g)(*t))
        close(jd(g, argnums=1)(*d), jt(g, argnums=1)(*t))
        close(jd(g, argnums=(0, 1))(*d), jt(g, argnums=(0, 1))(*t))
        close(jd(lambda x: (x.exp(), x.sum()))(d[0]), jt(lambda x: (x.exp(), x.sum()))(t[0]))
        close(jd(lambda m: m.softmax(-1))(d[1]), jt(lambda m: m.softmax(-1))(t[1]))
    h = lambda x: (x.sin() * x.sum()).sum()  # noqa: E731
    close(func.hessian(h)(d[0]), torch.func.hessian(h)(t[0]))
    close(func.jacrev(func.jacrev(h))(d[0]), torch.func.jacrev(torch.func.jacrev(h))(t[0]))
    close(func.hessian(f_ds, argnums=1)(*d), torch.func.hessian(f_t, argnums=1)(*t), atol=1e-4)
    xs = arr((6, 3), 3)
    (xd,), (xt,) = both(xs)
    close(func.vmap(func.jacrev(g), in_dims=(0, None))(xd, d[1]),
          torch.func.vmap(torch.func.jacrev(g), in_dims=(0, None))(xt, t[1]))
    close(func.vmap(func.jacfwd(g), in_dims=(0, None))(xd, d[1]),
          torch.func.vmap(torch.func.jacfwd(g), in_dims=(0, None))(xt, t[1]))
    close(func.vmap(func.hessian(h))(xd), torch.func.vmap(torch.func.hessian(h))(xt),
          atol=1e-4)
    close(func.jacrev(g, chunk_size=2)(*d), torch.func.jacrev(g, chunk_size=2)(*t))
    jac, aux = func.jacrev(lambda x: (x.sin(), x.cos()), has_aux=True)(d[0])
    jact, auxt = torch.func.jacrev(lambda x: (x.sin(), x.cos()), has_aux=True)(t[0])
    close((jac, aux), (jact, auxt))


def _copy_module(dm, tm):
    tm.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in
                        dm.state_dict().items()})
    return tm


def _check_functional_call(dm, tm, x, train=False):
    dm.train(train)
    tm.train(train)
    _copy_module(dm, tm)
    sd = {k: ds.tensor(arr(tuple(v.shape), i + 10)) if v.is_floating_point() else v
          for i, (k, v) in enumerate(dm.state_dict().items())}
    st = {k: torch.tensor(v.numpy()) for k, v in sd.items()}
    before = {k: v.detach().numpy().copy() for k, v in dm.state_dict().items()}
    (xd,), (xt,) = both(x)
    got = func.functional_call(dm, sd, (xd,))
    want = torch.func.functional_call(tm, st, (xt,))
    close(got, want, rtol=1e-4, atol=1e-4)
    # the module keeps its own tensors
    for k, v in dm.state_dict().items():
        if v.is_floating_point() and "running" not in k:
            np.testing.assert_array_equal(v.detach().numpy(), before[k])
    if train:
        return  # torch.func refuses grad through the in-place running-stat update
    # gradients with respect to the given parameters
    params = {k: v for k, v in sd.items() if k in dict(dm.named_parameters())}
    bufs = {k: v for k, v in sd.items() if k not in params}
    paramst = {k: st[k] for k in params}
    bufst = {k: st[k] for k in bufs}
    loss = lambda p: func.functional_call(dm, (p, bufs), (xd,))  # noqa: E731
    losst = lambda p: torch.func.functional_call(tm, (p, bufst), (xt,))  # noqa: E731

    def first(o):
        return o[0] if isinstance(o, tuple) else o

    close(func.grad(lambda p: first(loss(p)).square().sum())(params),
          torch.func.grad(lambda p: first(losst(p)).square().sum())(paramst),
          rtol=1e-3, atol=1e-4)


def test_functional_call_modules():
    ds.manual_seed(1)
    torch.manual_seed(1)
    _check_functional_call(ds.nn.Linear(4, 3), torch.nn.Linear(4, 3), arr((2, 4)))
    _check_functional_call(ds.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(2, 3, 3, padding=1),
                           arr((2, 2, 5, 5)))
    _check_functional_call(ds.nn.LSTM(3, 4, batch_first=True),
                           torch.nn.LSTM(3, 4, batch_first=True), arr((2, 5, 3)))
    mk = lambda nn: nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(),  # noqa: E731
                                  nn.Linear(6, 2))
    _check_functional_call(mk(ds.nn), mk(torch.nn), arr((5, 4)), train=False)
    _check_functional_call(mk(ds.nn), mk(torch.nn), arr((5, 4)), train=True)


def test_functional_call_options():
    lin = ds.nn.Linear(3, 2)
    x = ds.ones(1, 3)
    w, b = ds.zeros(2, 3), ds.ones(2)
    assert func.functional_call(lin, {"weight": w, "bias": b}, x).tolist() == [[1.0, 1.0]]
    assert func.functional_call(lin, ({"weight": w}, {"bias": b}), (x,)).tolist() == [[1.0, 1.0]]
    # a missing name keeps the module's tensor; strict requires all of them
    expect = (x @ lin.weight.detach().t()).tolist()
    assert np.allclose(func.functional_call(lin, {"bias": ds.zeros(2)}, x).tolist(), expect)
    with pytest.raises(RuntimeError):
        func.functional_call(lin, {"bias": b}, x, strict=True)
    with pytest.raises(ValueError):
        func.functional_call(lin, ({"bias": b}, {"bias": b}), x)
    with pytest.raises(AttributeError):
        func.functional_call(lin, {"nope": b}, x)
    # tied weights: one value serves both names
    class Tied(ds.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = ds.nn.Linear(2, 2, bias=False)
            self.b = ds.nn.Linear(2, 2, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    m = Tied()
    eye = ds.eye(2) * 2
    assert func.functional_call(m, {"a.weight": eye}, ds.ones(1, 2)).tolist() == [[4.0, 4.0]]
    out = func.functional_call(m, {"a.weight": eye}, ds.ones(1, 2), tie_weights=False)
    assert out.tolist() != [[4.0, 4.0]]
    assert m.a.weight is m.b.weight


def test_stack_module_state_ensemble():
    ds.manual_seed(2)
    models = [ds.nn.Linear(3, 2) for _ in range(4)]
    params, buffers = func.stack_module_state(models)
    assert tuple(params["weight"].shape) == (4, 2, 3) and params["weight"].requires_grad
    x = ds.tensor(arr((5, 3)))
    out = func.vmap(lambda p, b, x: func.functional_call(models[0], (p, b), (x,)),
                    in_dims=(0, 0, None))(params, buffers, x)
    want = ds.stack([m(x) for m in models])
    close(out, want)
    assert func.fallback_counts(reset=True) == {}


def test_per_sample_linear_shortcut_cases():
    """F.linear with an expanded weight inside vmap(grad) takes the per-example outer
    product path (``_expanded``): a weight used by linear and elsewhere, several rows per
    example, and second order (which takes the generic batched path) all agree with
    torch.func."""
    w, b, x = arr((4, 5)), arr((4,), 1), arr((6, 3, 5), 2)
    (wd, bd, xd), (wt, bt, xt) = both(w, b, x)

    def fd(w, b, x):
        return (F.linear(x, w, b).tanh() ** 2).sum() + 0.1 * (w * w).sum()

    def ft(w, b, x):
        return (TF.linear(x, w, b).tanh() ** 2).sum() + 0.1 * (w * w).sum()

    got = func.vmap(func.grad(fd, argnums=(0, 1)), in_dims=(None, None, 0))(wd, bd, xd)
    want = torch.func.vmap(torch.func.grad(ft, argnums=(0, 1)), in_dims=(None, None, 0))(
        wt, bt, xt)
    close(got, want)
    outer = lambda w: func.vmap(func.grad(fd), in_dims=(None, None, 0))(w, bd, xd).sum()  # noqa
    outert = lambda w: torch.func.vmap(torch.func.grad(ft), in_dims=(None, None, 0))(  # noqa
        w, bt, xt).sum()
    close(func.grad(outer)(wd), torch.func.grad(outert)(wt), atol=1e-4)
    # a batched input without the weight's levels (x mapped by an outer vmap only)
    got = func.vmap(lambda x: func.vmap(func.grad(fd), in_dims=(None, None, 0))(wd, bd, x))(
        ds.tensor(arr((2, 6, 3, 5), 3)))
    want = torch.func.vmap(lambda x: torch.func.vmap(torch.func.grad(ft), in_dims=(None, None,
                                                                                0))(wt, bt, x))(
        torch.tensor(arr((2, 6, 3, 5), 3)))
    close(got, want, atol=1e-4)


def test_per_sample_grads_cnn():
    ds.manual_seed(3)
    mk = lambda nn: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),  # noqa: E731
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3 * 3 * 3, 4))
    dm, tm = mk(ds.nn), mk(torch.nn)
    _copy_module(dm, tm)
    x, y = arr((5, 1, 6, 6)), np.random.default_rng(1).integers(0, 4, 5).astype(np.int64)
    (xd, yd), (xt, yt) = both(x, y)
    pd = {k: v.detach() for k, v in dm.named_parameters()}
    pt = {k: v.detach() for k, v in tm.named_parameters()}
    func.fallback_counts(reset=True)
    got = func.vmap(func.grad(lambda p, a, b: F.cross_entropy(
        func.functional_call(dm, p, (a.unsqueeze(0),)), b.unsqueeze(0))), in_dims=(None, 0, 0))(
        pd, xd, yd)
    want = torch.func.vmap(torch.func.grad(lambda p, a, b: TF.cross_entropy(
        torch.func.functional_call(tm, p, (a.unsqueeze(0),)), b.unsqueeze(0))),
        in_dims=(None, 0, 0))(pt, xt, yt)
    close(got, want, atol=1e-5)
    assert func.fallback_counts() == {}
