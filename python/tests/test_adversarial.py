"""deepseek.adversarial against attacks written in plain PyTorch (torchattacks' semantics),
the constraints every attack must keep, state restoration, errors, and the Trainer's
adversarial-training option."""

import math

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn as nn
from deepseek import adversarial as adv
from deepseek.trainer import Trainer

torch = pytest.importorskip("torch")
tF = torch.nn.functional

N, C, H, W, K = 6, 1, 6, 6, 5


# ----------------------------------------------------------------- twin models

def _models(seed=0):
    """The same CNN (conv -> tanh -> linear) in torch and deepseek, float64, same weights."""
    torch.manual_seed(seed)
    tm = torch.nn.Sequential(torch.nn.Conv2d(C, 3, 3, padding=1), torch.nn.Tanh(),
                             torch.nn.Flatten(), torch.nn.Linear(3 * H * W, K)).double()
    dm = nn.Sequential(nn.Conv2d(C, 3, 3, padding=1), nn.Tanh(), nn.Flatten(),
                       nn.Linear(3 * H * W, K)).double()
    dm.load_state_dict({k: ds.from_numpy(v.detach().numpy().copy())
                        for k, v in tm.state_dict().items()})
    return tm, dm


def _data(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, (N, C, H, W))
    y = rng.integers(0, K, N)
    return x, y


def _d(a):
    return ds.from_numpy(np.ascontiguousarray(a))


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# ----------------------------------------------------------------- torch references

def _sum_ce(out, y):
    return tF.cross_entropy(out, y, reduction="sum")


def _torch_grad(model, x_adv, y, targeted, loss_fn=_sum_ce):
    x_adv = x_adv.clone().requires_grad_(True)
    loss = loss_fn(model(x_adv), y)
    if targeted:
        loss = -loss
    (g,) = torch.autograd.grad(loss, x_adv)
    return g


def _l2(t):
    return t.flatten(1).norm(p=2, dim=1).view(-1, *([1] * (t.dim() - 1)))


def torch_fgsm(model, x, y, eps, clamp, targeted, norm):
    g = _torch_grad(model, x, y, targeted)
    step = g.sign() if norm == "linf" else g / (_l2(g) + 1e-10)
    out = x + eps * step
    return out.clamp(*clamp) if clamp else out


def torch_pgd(model, x, y, eps, alpha, steps, norm, clamp, targeted, start_rng=None,
              loss_fn=_sum_ce):
    x_adv = x.clone()
    if start_rng is not None:  # the same draws, in the same order, as deepseek's pgd
        if norm == "linf":
            delta = (_t(start_rng.random(tuple(x.shape))) * 2 - 1) * eps
        else:
            d = _t(start_rng.standard_normal(tuple(x.shape)))
            d = d / (_l2(d) + 1e-10)
            r = _t(start_rng.random((x.shape[0],))).view(-1, 1, 1, 1)
            delta = d * r * eps
        x_adv = x + delta
        if clamp:
            x_adv = x_adv.clamp(*clamp)
    for _ in range(steps):
        g = _torch_grad(model, x_adv, y, targeted, loss_fn)
        if norm == "linf":
            x_adv = x_adv + alpha * g.sign()
            delta = (x_adv - x).clamp(-eps, eps)
        else:
            x_adv = x_adv + alpha * g / (_l2(g) + 1e-10)
            delta = x_adv - x
            delta = delta * torch.clamp(eps / (_l2(delta) + 1e-10), max=1.0)
        x_adv = x + delta
        if clamp:
            x_adv = x_adv.clamp(*clamp)
    return x_adv.detach()


def _close(d_out, t_out, tm, y_t, atol=1e-10):
    a, b = d_out.numpy(), t_out.numpy()
    np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    with torch.no_grad():
        lt = _sum_ce(tm(t_out), y_t).item()
        ld = _sum_ce(tm(_t(a)), y_t).item()
    assert math.isclose(ld, lt, rel_tol=1e-9, abs_tol=1e-9)


CASES = [(norm, targeted, clamp) for norm in ("linf", "l2") for targeted in (False, True)
         for clamp in ((0.0, 1.0), None)]


# ----------------------------------------------------------------- against torch

@pytest.mark.parametrize("norm,targeted,clamp", CASES)
def test_fgsm_matches_torch(norm, targeted, clamp):
    tm, dm = _models()
    x, y = _data()
    eps = 0.1 if norm == "linf" else 0.5
    out = adv.fgsm(dm, _d(x), _d(y), eps, clamp=clamp, targeted=targeted, norm=norm)
    ref = torch_fgsm(tm, _t(x), _t(y), eps, clamp, targeted, norm)
    _close(out, ref, tm, _t(y))
    assert not np.allclose(out.numpy(), x)  # the attack moved the input


@pytest.mark.parametrize("norm,targeted,clamp", CASES)
@pytest.mark.parametrize("random_start", [False, True])
def test_pgd_matches_torch(norm, targeted, clamp, random_start):
    tm, dm = _models()
    x, y = _data()
    eps, alpha = (0.1, 0.03) if norm == "linf" else (0.6, 0.25)
    gen = np.random.default_rng(7) if random_start else None
    out = adv.pgd(dm, _d(x), _d(y), eps, alpha, 5, norm=norm, random_start=random_start,
                  clamp=clamp, targeted=targeted, generator=gen)
    ref = torch_pgd(tm, _t(x), _t(y), eps, alpha, 5, norm, clamp, targeted,
                    start_rng=np.random.default_rng(7) if random_start else None)
    _close(out, ref, tm, _t(y))
    # the attack did its job: loss up (untargeted) or down (targeted) from the clean input
    with torch.no_grad():
        l0 = _sum_ce(tm(_t(x)), _t(y)).item()
        l1 = _sum_ce(tm(ref), _t(y)).item()
    assert (l1 < l0) if targeted else (l1 > l0)


def test_pgd_custom_loss_fn_matches_torch():
    tm, dm = _models(3)
    x, y = _data(4)
    mean_ce_d = lambda o, t: ds.nn.functional.cross_entropy(o, t)  # noqa: E731
    mean_ce_t = lambda o, t: tF.cross_entropy(o, t)  # noqa: E731
    out = adv.pgd(dm, _d(x), _d(y), 0.1, 0.02, 4, random_start=False, loss_fn=mean_ce_d)
    ref = torch_pgd(tm, _t(x), _t(y), 0.1, 0.02, 4, "linf", (0.0, 1.0), False,
                    loss_fn=mean_ce_t)
    _close(out, ref, tm, _t(y))


def test_pgd_seeded_random_start_is_reproducible():
    _, dm = _models()
    x, y = _data()
    ds.manual_seed(5)
    a = adv.pgd(dm, _d(x), _d(y), 0.1, 0.02, 2)
    ds.manual_seed(5)
    b = adv.pgd(dm, _d(x), _d(y), 0.1, 0.02, 2)
    c = adv.pgd(dm, _d(x), _d(y), 0.1, 0.02, 2)
    assert np.array_equal(a.numpy(), b.numpy()) and not np.array_equal(a.numpy(), c.numpy())


# ----------------------------------------------------------------- constraints

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_eps_ball_and_data_range_hold(norm):
    ds.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    x = ds.rand(16, 1, 8, 8)
    y = ds.randint(0, 10, (16,))
    eps = 0.05 if norm == "linf" else 0.5
    # a big step size: every step leaves the ball and has to be projected back
    out = adv.pgd(model, x, y, eps, alpha=4 * eps, steps=6, norm=norm)
    delta = (out - x).numpy().reshape(16, -1)
    o = out.numpy()
    assert o.min() >= 0.0 and o.max() <= 1.0
    if norm == "linf":
        assert np.abs(delta).max() <= eps + 1e-6
        assert np.abs(delta).max() >= eps - 1e-6  # the budget is used
    else:
        n = np.linalg.norm(delta, axis=1)
        assert n.max() <= eps * (1 + 1e-5)
        assert n.max() >= eps * 0.9
    assert out.requires_grad is False and out.grad_fn is None
    f = adv.fgsm(model, x, y, eps)
    assert np.abs((f - x).numpy()).max() <= eps + 1e-6
    # eps = 0: the input comes back unchanged
    assert np.array_equal(adv.pgd(model, x, y, 0.0, 0.1, 3).numpy(), x.numpy())


def test_parameter_grads_requires_grad_and_mode_restored():
    ds.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    x = ds.rand(4, 1, 4, 4)
    y = ds.randint(0, 3, (4,))
    params = list(model.parameters())
    params[0].grad = ds.ones_like(params[0]) * 3.0  # an existing grad must survive
    params[3].requires_grad_(False)                 # a frozen parameter stays frozen
    model.train()
    model[2].eval()                                  # mixed modes are restored one by one
    before = params[0].grad.numpy().copy()
    for attack in (lambda: adv.pgd(model, x, y, 0.1, 0.02, 3),
                   lambda: adv.pgd(model, x, y, 0.5, 0.2, 3, norm="l2"),
                   lambda: adv.fgsm(model, x, y, 0.1),
                   lambda: adv.robust_accuracy(model, [(x, y)], eps=0.1, alpha=0.02, steps=2)):
        attack()
        assert np.array_equal(params[0].grad.numpy(), before)
        assert all(p.grad is None for p in params[1:])
        assert [p.requires_grad for p in params] == [True, True, True, False]
        assert model.training and model[1].training and not model[2].training
    model.eval()
    adv.pgd(model, x, y, 0.1, 0.02, 2)
    assert not any(m.training for m in model.modules())


def test_attack_runs_in_eval_mode_and_inside_no_grad():
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            seen.append((self.training, ds.is_grad_enabled()))
            return self.fc(x.reshape(x.shape[0], -1))

    m = Probe()
    x, y = ds.rand(2, 4), ds.tensor([0, 2])
    with ds.no_grad():
        out = adv.pgd(m, x, y, 0.1, 0.05, 2)
        assert not ds.is_grad_enabled()
    assert seen and all(s == (False, True) for s in seen)
    assert m.training and not np.array_equal(out.numpy(), x.numpy())


# ----------------------------------------------------------------- errors

def _bad_calls():
    m = nn.Linear(4, 3)
    x, y = ds.rand(2, 4), ds.tensor([0, 1])
    return m, x, y


@pytest.mark.parametrize("call,msg", [
    (lambda m, x, y: adv.pgd(m, x, y, -0.1, 0.01, 3), "eps must be >= 0"),
    (lambda m, x, y: adv.pgd(m, x, y, float("nan"), 0.01, 3), "eps must be finite"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.0, 3), "alpha must be > 0"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, -0.01, 3), "alpha must be > 0"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 0), "steps must be >= 1"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 3, norm="l3"), "unknown norm"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 3, norm=1), "unknown norm"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 3, clamp=(1, 0)), "clamp min must be < max"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 3, clamp=(0,)), "clamp must be"),
    (lambda m, x, y: adv.pgd(m, x * 3 - 1, y, 0.1, 0.01, 3), "outside clamp"),
    (lambda m, x, y: adv.pgd(m, x, y[:1], 0.1, 0.01, 3), "batch size"),
    (lambda m, x, y: adv.fgsm(m, x, y, -1.0), "eps must be >= 0"),
    (lambda m, x, y: adv.fgsm(m, x, y, 0.1, norm="l1"), "unknown norm"),
    (lambda m, x, y: adv.robust_accuracy(m, [(x, y)], attack="cw"), "unknown attack"),
    (lambda m, x, y: adv.robust_accuracy(m, [], attack="fgsm", eps=0.1), "no examples"),
    (lambda m, x, y: adv.robust_accuracy(m, [(x, y)], max_batches=0, eps=0.1, alpha=0.1,
                                         steps=1), "max_batches"),
    (lambda m, x, y: adv.PGDConfig(eps=0.1, alpha=0.01, steps=0), "steps must be >= 1"),
    (lambda m, x, y: adv.PGDConfig(eps=-1, alpha=0.01, steps=3), "eps must be >= 0"),
    (lambda m, x, y: adv.FGSMConfig(eps=0.1, norm="fro"), "unknown norm"),
    (lambda m, x, y: Trainer(m, adversarial=adv.PGDConfig(0.1, 0.01, 1),
                             adversarial_clean_weight=1.5), "adversarial_clean_weight"),
    (lambda m, x, y: Trainer(m, adversarial_clean_weight=0.5), "adversarial is None"),
])
def test_bad_inputs_raise_value_error(call, msg):
    m, x, y = _bad_calls()
    with pytest.raises(ValueError, match=msg):
        call(m, x, y)


@pytest.mark.parametrize("call,msg", [
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 2.5), "steps must be an int"),
    (lambda m, x, y: adv.pgd(m, x, y, "0.1", 0.01, 3), "eps must be a real number"),
    (lambda m, x, y: adv.pgd(m, x.long(), y, 0.1, 0.01, 3, clamp=None), "floating-point"),
    (lambda m, x, y: adv.pgd(m, x.numpy(), y, 0.1, 0.01, 3), "deepseek.Tensor"),
    (lambda m, x, y: adv.pgd(m, x, y, 0.1, 0.01, 3, generator=42), "numpy.random.Generator"),
    (lambda m, x, y: adv.fgsm("model", x, y, 0.1), "callable"),
    (lambda m, x, y: Trainer(m, adversarial=0.1), "adversarial must be"),
])
def test_bad_types_raise_type_error(call, msg):
    m, x, y = _bad_calls()
    with pytest.raises(TypeError, match=msg):
        call(m, x, y)


# ----------------------------------------------------------------- robust_accuracy

def test_robust_accuracy_counts_like_a_manual_loop():
    ds.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    batches = [(ds.rand(10, 6), ds.randint(0, 3, (10,))) for _ in range(3)]
    cfg = adv.PGDConfig(eps=0.2, alpha=0.05, steps=4, generator=np.random.default_rng(0))
    res = adv.robust_accuracy(model, batches, attack=cfg, max_batches=2)
    cfg.generator = np.random.default_rng(0)
    clean = robust = 0
    for x, y in batches[:2]:
        ok = (model(x).argmax(-1) == y).numpy()
        ok_adv = (model(cfg(model, x, y)).argmax(-1) == y).numpy()
        clean += ok.sum()
        robust += (ok & ok_adv).sum()
    assert res.total == 20 and res.clean == clean / 20 and res.robust == robust / 20
    assert res.robust <= res.clean
    one = adv.robust_accuracy(model, batches[0], attack="fgsm", eps=0.0)  # one (x, y) pair
    assert one.total == 10 and one.robust == one.clean


# ----------------------------------------------------------------- Trainer option

def _robust_feature_problem(n, seed):
    """Binary task where the plain optimum leans on small 'non-robust' features (Tsipras et
    al.): feature 0 moves by +-0.3 with the class but is flipped for 20% of the examples;
    features 1..16 move by +-0.08 with the class (jointly near-perfect, but an L-inf
    perturbation of 0.1 reverses every one of them)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 2.0 * y - 1.0
    flip = np.where(rng.random(n) < 0.2, -1.0, 1.0)
    x = np.empty((n, 17), dtype=np.float32)
    x[:, 0] = 0.5 + 0.3 * s * flip
    x[:, 1:] = 0.5 + 0.08 * s[:, None] + rng.normal(0, 0.05, (n, 16))
    return ds.from_numpy(np.clip(x, 0, 1).astype(np.float32)), ds.from_numpy(y.astype(np.int64))


def _fit(adversarial, clean_weight=0.0):
    # The plain model's robust accuracy depends on its initialisation: 0.17-0.28 for seeds
    # 1-5 with the current generator, 0.63 for seed 0 (an outlier that learns feature 0).
    ds.manual_seed(1)
    model = nn.Sequential(nn.Linear(17, 16), nn.ReLU(), nn.Linear(16, 2))
    x, y = _robust_feature_problem(512, 0)
    batches = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 512, 64)]
    tr = Trainer(model, optimizer=ds.optim.Adam(model.parameters(), lr=0.02),
                 adversarial=adversarial, adversarial_clean_weight=clean_weight)
    hist = tr.fit(batches, epochs=12, verbose=False)
    xt, yt = _robust_feature_problem(1000, 1)
    res = adv.robust_accuracy(model, [(xt, yt)], attack="pgd", eps=0.1, alpha=0.025, steps=10,
                              generator=np.random.default_rng(0))
    return res, hist, model


def test_trainer_adversarial_training_raises_robust_accuracy():
    plain, hp, _ = _fit(None)
    robust, hr, m = _fit(adv.PGDConfig(eps=0.1, alpha=0.025, steps=5,
                                       generator=np.random.default_rng(1)))
    assert plain.clean > 0.95 and plain.robust < 0.5, plain
    assert robust.robust > 0.75 and robust.robust > plain.robust + 0.3, (plain, robust)
    assert len(hr["train_loss"]) == 12 and m.training
    mixed, _, _ = _fit(adv.PGDConfig(eps=0.1, alpha=0.025, steps=5,
                                     generator=np.random.default_rng(1)), clean_weight=0.5)
    assert mixed.total == 1000 and mixed.robust > plain.robust


def test_trainer_adversarial_with_a_callable_and_loss_fn():
    calls = []

    def attack(model, x, y):
        calls.append(x.shape[0])
        return adv.fgsm(model, x, y, 0.05)

    model = nn.Linear(17, 2)
    x, y = _robust_feature_problem(64, 2)
    Trainer(model, adversarial=attack).fit([(x[:32], y[:32]), (x[32:], y[32:])], verbose=False)
    assert calls == [32, 32]
    # a config without loss_fn attacks the Trainer's loss_fn
    used = []

    def loss_fn(out, t):
        used.append(ds.is_grad_enabled())
        return ds.nn.functional.cross_entropy(out, t)

    Trainer(model, loss_fn=loss_fn, adversarial=adv.PGDConfig(0.05, 0.02, 2)).fit(
        [(x, y)], verbose=False)
    assert len(used) == 3  # two attack steps + the training loss
    with pytest.raises(TypeError, match="pairs"):
        Trainer(model, adversarial=adv.FGSMConfig(0.05)).fit([x], verbose=False)
