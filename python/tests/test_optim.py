"""deepseek.optim: optimizers, param groups, state dicts, schedulers, clipping."""

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn as nn
from deepseek.optim import SGD, Adam, AdamW, RMSprop
from deepseek.optim.lr_scheduler import (CosineAnnealingLR, LinearLR, OneCycleLR, SequentialLR,
                                         StepLR)


def quad_steps(opt_cls, n=20, **kw):
    w = nn.Parameter(ds.tensor([3.0, -2.0]))
    opt = opt_cls([w], **kw)
    for _ in range(n):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    return w


@pytest.mark.parametrize("cls,kw", [(SGD, dict(lr=0.1)), (SGD, dict(lr=0.1, momentum=0.9)),
                                    (Adam, dict(lr=0.1)), (AdamW, dict(lr=0.1)),
                                    (RMSprop, dict(lr=0.05))])
def test_optimizers_decrease_quadratic(cls, kw):
    w = quad_steps(cls, **kw)
    assert (w * w).sum().item() < 13.0 * 0.5


def test_matches_torch_adam():
    torch = pytest.importorskip("torch")
    w0 = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    w = nn.Parameter(ds.tensor(w0))
    tw = torch.nn.Parameter(torch.tensor(w0))
    opt = AdamW([w], lr=0.05, weight_decay=0.1)
    topt = torch.optim.AdamW([tw], lr=0.05, weight_decay=0.1)
    for _ in range(5):
        opt.zero_grad()
        topt.zero_grad()
        (w ** 3).sum().backward()
        (tw ** 3).sum().backward()
        opt.step()
        topt.step()
    assert np.allclose(w.tolist(), tw.tolist(), atol=1e-6)


def test_param_groups_editable_and_add_group():
    a = nn.Parameter(ds.ones(2))
    b = nn.Parameter(ds.ones(2))
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    opt.param_groups[0]["lr"] = 0.0
    (a.sum() + b.sum()).backward()
    opt.step()
    assert a.tolist() == [1, 1] and b.tolist() == [0.5, 0.5]
    c = nn.Parameter(ds.ones(1))
    opt.add_param_group({"params": c, "lr": 1.0})
    assert len(opt.param_groups) == 3 and opt.param_groups[2]["momentum"] == 0
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError):
        SGD([], lr=0.1)
    with pytest.raises(ValueError):
        SGD([a], lr=-1.0)


def test_state_dict_roundtrip_continues_identically(tmp_path):
    def make():
        ds.manual_seed(0)
        m = nn.Linear(3, 2)
        return m, Adam(m.parameters(), lr=0.01)

    x = ds.randn(4, 3)
    m1, o1 = make()
    for _ in range(3):
        o1.zero_grad()
        m1(x).pow(2).sum().backward()
        o1.step()
    sd = o1.state_dict()
    assert set(sd) >= {"state", "param_groups"} and sd["state"][0]["exp_avg"].shape == (2, 3)
    ds.save({"opt": sd, "model": m1.state_dict()}, tmp_path / "ck.pt")
    ck = ds.load(tmp_path / "ck.pt")
    m2, o2 = make()
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["opt"])
    for m, o in ((m1, o1), (m2, o2)):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()
    assert np.allclose(m1.weight.tolist(), m2.weight.tolist(), atol=1e-7)
    assert o1.state[m1.weight]["exp_avg"].shape == (2, 3)


def lrs(sched, opt, n):
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedulers_match_torch():
    torch = pytest.importorskip("torch")

    def pair(make, tmake, n=12):
        p = nn.Parameter(ds.zeros(1))
        tp = torch.nn.Parameter(torch.zeros(1))
        opt = SGD([p], lr=0.1, momentum=0.9)
        topt = torch.optim.SGD([tp], lr=0.1, momentum=0.9)
        s, ts = make(opt), tmake(topt)
        a = lrs(s, opt, n)
        b = []
        for _ in range(n):
            b.append(topt.param_groups[0]["lr"])
            topt.step()
            ts.step()
        assert np.allclose(a, b), (a, b)
        assert np.allclose(s.get_last_lr(), ts.get_last_lr())

    pair(lambda o: StepLR(o, 3, 0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5))
    pair(lambda o: CosineAnnealingLR(o, 10, 0.001),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10, 0.001))
    pair(lambda o: LinearLR(o, 0.1, 1.0, 4), lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, 1.0, 4))
    pair(lambda o: OneCycleLR(o, 1.0, total_steps=12),
         lambda o: torch.optim.lr_scheduler.OneCycleLR(o, 1.0, total_steps=12))
    tsl = torch.optim.lr_scheduler
    dsl = ds.optim.lr_scheduler
    pair(lambda o: dsl.LambdaLR(o, lambda e: 0.9 ** e), lambda o: tsl.LambdaLR(o, lambda e: 0.9 ** e))
    pair(lambda o: dsl.MultiplicativeLR(o, lambda e: 0.8), lambda o: tsl.MultiplicativeLR(o, lambda e: 0.8))
    pair(lambda o: dsl.ExponentialLR(o, 0.7), lambda o: tsl.ExponentialLR(o, 0.7))
    pair(lambda o: dsl.MultiStepLR(o, [2, 5, 5], 0.5), lambda o: tsl.MultiStepLR(o, [2, 5, 5], 0.5))
    pair(lambda o: SequentialLR(o, [LinearLR(o, 0.1, 1.0, 3), CosineAnnealingLR(o, 6)], [3]),
         lambda o: tsl.SequentialLR(o, [tsl.LinearLR(o, 0.1, 1.0, 3), tsl.CosineAnnealingLR(o, 6)], [3]))


def test_scheduler_values_without_torch():
    p = nn.Parameter(ds.zeros(1))
    opt = SGD([p], lr=1.0)
    s = StepLR(opt, step_size=2, gamma=0.1)
    got = lrs(s, opt, 5)
    assert np.allclose(got, [1.0, 1.0, 0.1, 0.1, 0.01])
    st = s.state_dict()
    assert st["last_epoch"] == 5
    opt2 = SGD([nn.Parameter(ds.zeros(1))], lr=1.0)
    s2 = StepLR(opt2, step_size=2, gamma=0.1)
    s2.load_state_dict(st)
    assert s2.last_epoch == 5


def test_clip_grad_norm():
    a = nn.Parameter(ds.tensor([3.0, 4.0]))
    a.grad = ds.tensor([3.0, 4.0])
    n = nn.utils.clip_grad_norm_([a], 1.0)
    assert n.item() == pytest.approx(5.0)
    assert np.allclose(a.grad.tolist(), [0.6, 0.8], atol=1e-6)
    nn.utils.clip_grad_value_([a], 0.7)
    assert a.grad.tolist()[1] == pytest.approx(0.7)


def test_user_defined_optimizer_subclass():
    class SignSGD(ds.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        @ds.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    st = self.state[p]
                    st["n"] = st.get("n", 0) + 1
                    p.add_(p.grad.sign(), alpha=-group["lr"])

    w = nn.Parameter(ds.tensor([1.0, -1.0]))
    opt = SignSGD([w], lr=0.25)
    for _ in range(2):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    assert w.tolist() == [0.5, -0.5] and opt.state[w]["n"] == 2
    sd = opt.state_dict()
    assert sd["state"][0]["n"] == 2 and sd["param_groups"][0]["params"] == [0]
    opt2 = SignSGD([w])
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.25 and opt2.state[w]["n"] == 2
    opt.zero_grad()
    assert w.grad is None
    with pytest.raises(TypeError, match="Python-defined"):
        StepLR(opt, 1)


def test_python_schedulers_without_torch():
    from deepseek.optim.lr_scheduler import ExponentialLR, LambdaLR, MultiStepLR, ReduceLROnPlateau

    p = nn.Parameter(ds.zeros(1))
    opt = SGD([p], lr=1.0)
    s = LambdaLR(opt, lambda e: 1.0 / (e + 1))
    assert np.allclose(lrs(s, opt, 4), [1.0, 0.5, 1 / 3, 0.25])
    opt = SGD([p], lr=1.0)
    assert np.allclose(lrs(ExponentialLR(opt, 0.5), opt, 3), [1.0, 0.5, 0.25])
    opt = SGD([p], lr=1.0)
    assert np.allclose(lrs(MultiStepLR(opt, [1, 3], 0.1), opt, 4), [1.0, 0.1, 0.1, 0.01])
    opt = SGD([p], lr=1.0)
    r = ReduceLROnPlateau(opt, patience=1, factor=0.5)
    for metric in [1.0, 0.9, 0.95, 0.95, 0.95]:
        r.step(metric)
    assert opt.param_groups[0]["lr"] == 0.5 and r.get_last_lr() == [0.5]
    # a Python scheduler drives the Rust optimizer: the step uses the new lr
    opt = SGD([p], lr=1.0)
    ExponentialLR(opt, 0.5).step()
    p.grad = ds.ones(1)
    opt.step()
    assert p.tolist() == [-0.5]
