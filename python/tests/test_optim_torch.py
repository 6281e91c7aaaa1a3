"""Adagrad, RAdam and NAdam against real PyTorch: the same parameters and gradients give the
same updates, and optimizer state dicts move between the two mid-training."""

import numpy as np
import pytest

import deepseek as ds

torch = pytest.importorskip("torch")

CASES = [
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1,
                     eps=1e-8)),
    ("Adagrad", dict(lr=0.05, maximize=True)),
    ("RAdam", dict(lr=0.01)),
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("NAdam", dict()),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1,
                   decoupled_weight_decay=True, maximize=True)),
]


def _grads(step, shapes):
    g = np.random.default_rng(100 + step)
    return [g.standard_normal(s).astype(np.float32) for s in shapes]


def _pair(kind, kw, shapes):
    g = np.random.default_rng(0)
    init = [g.standard_normal(s).astype(np.float32) for s in shapes]
    tp = [torch.tensor(a, requires_grad=True) for a in init]
    dp = [ds.nn.Parameter(ds.tensor(a)) for a in init]
    return tp, dp, getattr(torch.optim, kind)(tp, **kw), getattr(ds.optim, kind)(dp, **kw)


def _step(params, opt, grads, lib):
    for p, g in zip(params, grads):
        p.grad = lib.tensor(g)
    opt.step()


@pytest.mark.parametrize("kind,kw", CASES)
def test_matches_torch(kind, kw):
    shapes = [(5, 3), (7,)]
    tp, dp, topt, dopt = _pair(kind, kw, shapes)
    for step in range(12):
        gs = _grads(step, shapes)
        _step(tp, topt, gs, torch)
        _step(dp, dopt, gs, ds)
    for a, b in zip(tp, dp):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    # the state has torch's names and values
    ts, dsd = topt.state_dict(), dopt.state_dict()
    for i in ts["state"]:
        for k, v in ts["state"][i].items():
            got = dsd["state"][i][k]
            np.testing.assert_allclose(np.asarray(got.tolist()), np.asarray(v.tolist()),
                                       rtol=1e-5, atol=1e-7, err_msg=k)
    for k in kw:
        assert dsd["param_groups"][0][k] == (tuple(kw[k]) if k == "betas" else kw[k])


@pytest.mark.parametrize("kind,kw", [CASES[1], CASES[5], CASES[7]])
def test_state_moves_between_torch_and_deepseek(kind, kw, tmp_path):
    shapes = [(4, 2), (3,)]
    tp, dp, topt, dopt = _pair(kind, kw, shapes)
    for step in range(6):
        _step(tp, topt, _grads(step, shapes), torch)
    # torch -> file -> deepseek, then both continue
    torch.save({"params": [p.detach() for p in tp], "optim": topt.state_dict()},
               tmp_path / "t.pt")
    ck = ds.load(tmp_path / "t.pt")
    with ds.no_grad():
        for p, v in zip(dp, ck["params"]):
            p.copy_(v)
    dopt.load_state_dict(ck["optim"])
    for step in range(6, 10):
        gs = _grads(step, shapes)
        _step(tp, topt, gs, torch)
        _step(dp, dopt, gs, ds)
    for a, b in zip(tp, dp):
        np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5,
                                   atol=1e-6)
    # deepseek -> file -> torch
    ds.save({"optim": dopt.state_dict()}, tmp_path / "d.pt")
    topt2 = getattr(torch.optim, kind)([p.detach().clone().requires_grad_(True) for p in tp],
                                       **kw)
    topt2.load_state_dict(torch.load(tmp_path / "d.pt", weights_only=True)["optim"])
    for i, st in topt.state_dict()["state"].items():
        for k, v in st.items():
            np.testing.assert_allclose(np.asarray(topt2.state_dict()["state"][i][k].tolist()),
                                       np.asarray(v.tolist()), rtol=1e-5, atol=1e-7)


def test_bad_hyper_parameters_raise():
    p = [ds.nn.Parameter(ds.ones(2))]
    with pytest.raises(ValueError, match="learning rate"):
        ds.optim.Adagrad(p, lr=-1)
    with pytest.raises(ValueError, match="beta"):
        ds.optim.RAdam(p, betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="momentum_decay"):
        ds.optim.NAdam(p, momentum_decay=-0.1)
