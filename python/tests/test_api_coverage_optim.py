"""The optimizers and LR schedulers added for issue 15, against PyTorch: parameters after
each of several steps on the same gradients, learning rates (and cycled momentum) per step,
state_dict round trips and bad hyper-parameters."""

import numpy as np
import pytest

import deepseek as ds

torch = pytest.importorskip("torch")

OPTS = [
    ("Adamax", {}), ("Adamax", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adamax", {"maximize": True}),
    ("Adadelta", {}), ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.05}),
    ("Rprop", {}), ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.1)}),
    ("ASGD", {}), ("ASGD", {"lr": 0.05, "lambd": 1e-2, "alpha": 0.5, "t0": 2,
                           "weight_decay": 0.01}),
    ("Adafactor", {}), ("Adafactor", {"lr": 0.05, "beta2_decay": -0.5, "eps": (1e-20, 1e-2),
                                      "d": 2.0, "weight_decay": 0.1, "maximize": True}),
]


def _run(lib, name, kw, p0, grads):
    p = lib.nn.Parameter(lib.tensor(p0.copy()))
    opt = getattr(lib.optim, name)([p], **kw)
    out = []
    for g in grads:
        opt.zero_grad()
        (p * lib.tensor(g)).sum().backward()
        opt.step()
        out.append(p.detach().numpy().copy())
    return out, opt


@pytest.mark.parametrize("name,kw", OPTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTS)])
def test_optimizer_matches_torch(name, kw):
    r = np.random.default_rng(0)
    p0 = r.normal(size=(3, 4)).astype("float32")
    grads = [r.normal(size=(3, 4)).astype("float32") for _ in range(6)]
    grads[3] = -grads[2]  # a sign flip (Rprop's backtracking)
    mine, opt_d = _run(ds, name, kw, p0, grads)
    ref, opt_t = _run(torch, name, kw, p0, grads)
    for k, (a, b) in enumerate(zip(mine, ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"step {k + 1}")
    sd_d, sd_t = opt_d.state_dict(), opt_t.state_dict()
    assert set(sd_d["state"][0]) == set(sd_t["state"][0])
    for k, v in sd_t["state"][0].items():
        np.testing.assert_allclose(np.asarray(sd_d["state"][0][k].numpy()), v.numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=k)
    # a fresh optimizer resumes from the state dict
    p = ds.nn.Parameter(ds.tensor(mine[-1]))
    opt2 = getattr(ds.optim, name)([p], **kw)
    opt2.load_state_dict(sd_d)
    (p * ds.tensor(grads[0])).sum().backward()
    opt2.step()
    opt_t.zero_grad()
    pt = opt_t.param_groups[0]["params"][0]
    (pt * torch.tensor(grads[0])).sum().backward()
    opt_t.step()
    np.testing.assert_allclose(p.detach().numpy(), pt.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda o: o.Adamax([_p(o)], lr=-1), lambda o: o.Adamax([_p(o)], betas=(1.0, 0.9)),
    lambda o: o.Adadelta([_p(o)], rho=1.5), lambda o: o.Rprop([_p(o)], etas=(1.2, 0.5)),
    lambda o: o.ASGD([_p(o)], weight_decay=-1), lambda o: o.Adafactor([_p(o)], d=0.5),
    lambda o: o.Adafactor([_p(o)], beta2_decay=0.5),
])
def test_optimizer_bad_hyper_parameters(make):
    with pytest.raises(ValueError):
        make(ds.optim)
    with pytest.raises(ValueError):
        make(torch.optim)


def _p(optim_mod):
    lib = ds if optim_mod is ds.optim else torch
    return lib.nn.Parameter(lib.zeros(2))


SCHEDS = [
    ("ConstantLR", "SGD", {}, {}),
    ("ConstantLR", "SGD", {}, {"factor": 0.5, "total_iters": 3}),
    ("PolynomialLR", "SGD", {}, {}),
    ("PolynomialLR", "SGD", {}, {"total_iters": 4, "power": 2.0}),
    ("CosineAnnealingWarmRestarts", "SGD", {}, {"T_0": 3}),
    ("CosineAnnealingWarmRestarts", "SGD", {}, {"T_0": 2, "T_mult": 2, "eta_min": 0.01}),
    ("CyclicLR", "SGD", {"momentum": 0.9}, {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 3}),
    ("CyclicLR", "SGD", {"momentum": 0.9}, {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2,
                                            "step_size_down": 4, "mode": "triangular2"}),
    ("CyclicLR", "Adam", {}, {"base_lr": 0.001, "max_lr": 0.01, "step_size_up": 2,
                              "mode": "exp_range", "gamma": 0.9}),
    ("CyclicLR", "SGD", {}, {"base_lr": 0.01, "max_lr": 0.1, "step_size_up": 2,
                             "cycle_momentum": False, "scale_fn": lambda x: 0.5 ** x,
                             "scale_mode": "iterations"}),
]


def _lrs(lib, sched, opt_name, okw, skw, steps=12):
    p = lib.nn.Parameter(lib.zeros(2))
    opt = getattr(lib.optim, opt_name)([p], lr=0.1, **okw)
    s = getattr(lib.optim.lr_scheduler, sched)(opt, **skw)
    out = []
    for _ in range(steps):
        opt.step()
        s.step()
        g = opt.param_groups[0]
        out.append((s.get_last_lr()[0], g.get("momentum"),
                    g["betas"][0] if "betas" in g else None))
    return out


@pytest.mark.parametrize("sched,opt,okw,skw", SCHEDS,
                         ids=[f"{s[0]}-{i}" for i, s in enumerate(SCHEDS)])
def test_scheduler_matches_torch(sched, opt, okw, skw):
    mine = _lrs(ds, sched, opt, okw, skw)
    ref = _lrs(torch, sched, opt, okw, skw)
    for k, (a, b) in enumerate(zip(mine, ref)):
        for x, y in zip(a, b):
            if y is None:
                continue
            assert abs(x - y) <= 1e-9 + 1e-7 * abs(y), (k, a, b)


def test_warm_restarts_with_fractional_epochs_and_chained():
    def run(lib):
        p = lib.nn.Parameter(lib.zeros(2))
        opt = lib.optim.SGD([p], lr=0.1)
        s = lib.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
        out = []
        for e in (0.5, 1.0, 2.5, 3.0, 6.25, 9.0):
            s.step(e)
            out.append(s.get_last_lr()[0])
        opt2 = lib.optim.SGD([p], lr=1.0)
        c = lib.optim.lr_scheduler.ChainedScheduler([
            lib.optim.lr_scheduler.ConstantLR(opt2, factor=0.5, total_iters=2),
            lib.optim.lr_scheduler.ExponentialLR(opt2, gamma=0.9)])
        for _ in range(5):
            opt2.step()
            c.step()
            out.append(c.get_last_lr()[0])
        return out

    np.testing.assert_allclose(run(ds), run(torch), rtol=1e-7)


def test_python_optimizer_with_python_scheduler_and_bad_scheduler_arguments():
    p = ds.nn.Parameter(ds.zeros(2))
    opt = ds.optim.Adadelta([p], lr=1.0)
    s = ds.optim.lr_scheduler.PolynomialLR(opt, total_iters=2)
    s.step()
    assert abs(opt.param_groups[0]["lr"] - 0.5) < 1e-12
    sd = s.state_dict()
    s.step()
    s.load_state_dict(sd)
    assert s.last_epoch == 1
    sgd = ds.optim.SGD([ds.nn.Parameter(ds.zeros(2))], lr=0.1)
    with pytest.raises(ValueError):
        ds.optim.lr_scheduler.ConstantLR(sgd, factor=1.5)
    with pytest.raises(ValueError):
        ds.optim.lr_scheduler.CosineAnnealingWarmRestarts(sgd, T_0=0)
    with pytest.raises(ValueError):
        ds.optim.lr_scheduler.CyclicLR(ds.optim.Adadelta([ds.nn.Parameter(ds.zeros(1))]),
                                       0.01, 0.1)
    with pytest.raises(ValueError):
        ds.optim.lr_scheduler.CyclicLR(sgd, 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError):
        ds.optim.lr_scheduler.ChainedScheduler([])


@pytest.mark.parametrize("kw", [{}, {"line_search_fn": "strong_wolfe"},
                                {"lr": 0.5, "history_size": 3, "max_iter": 5},
                                {"line_search_fn": "strong_wolfe", "maximize": True}])
def test_lbfgs_matches_torch(kw):
    r = np.random.default_rng(0)
    a = r.normal(size=(6, 3)).astype("float64")
    b = r.normal(size=(6,)).astype("float64")
    w0 = r.normal(size=(3,)).astype("float64")

    def run(lib):
        w = lib.nn.Parameter(lib.tensor(w0.copy()))
        A, B = lib.tensor(a), lib.tensor(b)
        opt = lib.optim.LBFGS([w], **kw)
        sign = -1.0 if kw.get("maximize") else 1.0

        def closure():
            opt.zero_grad()
            r_ = A.matmul(w) - B
            loss = ((r_ * r_).sum() + (w * w * w * w).sum() * 0.1) * sign
            loss.backward()
            return loss

        losses = [float(opt.step(closure)) for _ in range(3)]
        st = opt.state[w]
        return w.detach().numpy(), losses, st["n_iter"], st["func_evals"]

    (w_d, l_d, n_d, f_d), (w_t, l_t, n_t, f_t) = run(ds), run(torch)
    np.testing.assert_allclose(w_d, w_t, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(l_d, l_t, rtol=1e-6, atol=1e-8)
    assert (n_d, f_d) == (n_t, f_t)


def test_lbfgs_bad_arguments():
    p = ds.nn.Parameter(ds.zeros(2))
    with pytest.raises(ValueError):
        ds.optim.LBFGS([p], lr=-1)
    with pytest.raises(ValueError):
        ds.optim.LBFGS([p], line_search_fn="armijo")
    with pytest.raises(ValueError):
        ds.optim.LBFGS([{"params": [p]}, {"params": [ds.nn.Parameter(ds.zeros(1))]}])


def test_adafactor_vectors_and_batched_matrices():
    r = np.random.default_rng(3)
    for shape in ((5,), (2, 3, 4)):
        p0 = r.normal(size=shape).astype("float32")
        grads = [r.normal(size=shape).astype("float32") for _ in range(4)]
        mine, _ = _run(ds, "Adafactor", {}, p0, grads)
        ref, _ = _run(torch, "Adafactor", {}, p0, grads)
        np.testing.assert_allclose(mine[-1], ref[-1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [{}, {"lr": 0.02, "nesterov": False, "weight_decay": 0.0,
                                     "adjust_lr_fn": "match_rms_adamw"},
                                {"adjust_lr_fn": "spectral_unclamped", "ns_steps": 3}])
@pytest.mark.parametrize("shape", [(4, 6), (7, 3)])
def test_muon_matches_torch(kw, shape):
    # Newton-Schulz runs in bfloat16 on both sides; rounding differs in the last bits, so
    # the updates agree to bfloat16 precision.
    r = np.random.default_rng(1)
    p0 = r.normal(size=shape).astype("float32")
    grads = [r.normal(size=shape).astype("float32") for _ in range(3)]
    mine, opt = _run(ds, "Muon", kw, p0, grads)
    ref, _ = _run(torch, "Muon", kw, p0, grads)
    lr = kw.get("lr", 1e-3)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a - p0, b - p0, rtol=0.05, atol=lr * 0.05)
    assert set(opt.state_dict()["state"][0]) == {"momentum_buffer"}


def test_muon_bad_arguments():
    with pytest.raises(ValueError):
        ds.optim.Muon([ds.nn.Parameter(ds.zeros(3))])
    with pytest.raises(ValueError):
        ds.optim.Muon([ds.nn.Parameter(ds.zeros(2, 2))], adjust_lr_fn="cosine")
    with pytest.raises(ValueError):
        ds.optim.Muon([ds.nn.Parameter(ds.zeros(2, 2))], momentum=-1)
