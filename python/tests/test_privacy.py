"""deepseek.privacy: accountants against Google's dp-accounting, per-sample gradients against
per-example backward passes (float64), DP-SGD clipping and noise, Poisson sampling, errors,
and the PrivacyEngine end to end."""

import importlib
import math
import subprocess
import sys

import pytest

import deepseek
from deepseek import nn
from deepseek.nn import functional as F
from deepseek.privacy import (DPGRU, DPLSTM, DPDataLoader, DPMultiheadAttention, DPOptimizer, GradSampleModule, PLDAccountant,
                              PrivacyEngine, RDPAccountant, UniformWithReplacementSampler,
                              UnsupportedModuleError, get_noise_multiplier)
from deepseek.privacy import rdp as rdp_mod
from deepseek.utils.data import DataLoader, TensorDataset


def _dp_accounting():
    """Google's dp-accounting (the reference); installed with pip if missing, skipped only
    when pip cannot reach PyPI."""
    try:
        return importlib.import_module("dp_accounting")
    except ImportError:
        # Without its numpy~=1.21 pin (it runs on numpy 2; see scripts/test.sh).
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "absl-py", "attrs",
                            "dm-tree", "mpmath", "scipy"], capture_output=True, text=True,
                           timeout=300)
        if r.returncode == 0:
            r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                                "dp-accounting==0.4.4"], capture_output=True, text=True,
                               timeout=300)
        if r.returncode != 0:
            pytest.skip(f"dp-accounting not installed and pip could not get it: {r.stderr[-300:]}")
        importlib.invalidate_caches()
        return importlib.import_module("dp_accounting")


@pytest.fixture(scope="module")
def dpa():
    return _dp_accounting()


def _ref_eps(dpa, kind, q, sigma, steps, delta):
    from dp_accounting import pld, rdp
    acc = rdp.RdpAccountant() if kind == "rdp" else pld.PLDAccountant()
    acc.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(sigma)), steps)
    return acc.get_epsilon(delta)


def _ours(kind, q, sigma, steps, delta):
    acc = RDPAccountant() if kind == "rdp" else PLDAccountant()
    acc.history = [(sigma, q, steps)]
    return acc.get_epsilon(delta)


# --------------------------------------------------------------------------- accountants

def test_known_point_mnist():
    q, sigma, steps, delta = 256 / 60000, 1.1, 14062, 1e-5
    assert _ours("rdp", q, sigma, steps, delta) == pytest.approx(2.59656, abs=5e-6)
    assert _ours("pld", q, sigma, steps, delta) == pytest.approx(2.38169, abs=5e-6)


RDP_GRID = [(q, s, n, d) for q in (1e-3, 0.034, 0.25, 1.0) for s in (0.6, 1.1, 2.15, 6.0)
            for n, d in ((1, 1e-3), (300, 1e-9), (10000, 1e-5))]


def test_rdp_matches_dp_accounting(dpa):
    worst = 0.0
    for q, s, n, d in RDP_GRID + [(256 / 60000, 1.1, 14062, 1e-5)]:
        ref, ours = _ref_eps(dpa, "rdp", q, s, n, d), _ours("rdp", q, s, n, d)
        worst = max(worst, abs(ours - ref) / max(ref, 1e-12))
    assert worst < 1e-6, worst


# (q, sigma, steps, delta): small/medium/large sampling rates, little/much noise, one step
# to a few thousand, and no subsampling (q = 1, one symmetric distribution).
PLD_GRID = [(2e-3, 0.9, 1200, 1e-5), (2e-3, 2.15, 200, 1e-3), (0.034, 2.15, 1200, 1e-5),
            (0.034, 0.9, 200, 1e-5), (0.034, 6.0, 1, 1e-3), (0.25, 2.15, 200, 1e-5),
            (0.25, 6.0, 1200, 1e-3), (0.25, 0.9, 1, 1e-5), (1.0, 3.0, 50, 1e-5),
            (256 / 60000, 1.1, 14062, 1e-5)]


def test_pld_matches_dp_accounting(dpa):
    worst = 0.0
    for q, s, n, d in PLD_GRID:
        ref, ours = _ref_eps(dpa, "pld", q, s, n, d), _ours("pld", q, s, n, d)
        worst = max(worst, abs(ours - ref) / max(ref, 1e-12))
    assert worst < 1e-6, worst


def test_pld_composition_of_different_steps_matches(dpa):
    from dp_accounting import pld
    ref = pld.PLDAccountant()
    ours = PLDAccountant()
    for s, q, n in [(1.5, 0.02, 300), (0.9, 0.05, 40)]:
        ref.compose(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(s)), n)
        for _ in range(n):
            ours.step(noise_multiplier=s, sample_rate=q)
    assert ours.history == [(1.5, 0.02, 300), (0.9, 0.05, 40)]
    e = ours.get_epsilon(1e-6)
    assert e == pytest.approx(ref.get_epsilon(1e-6), rel=1e-6)
    assert ours.get_delta(e) == pytest.approx(1e-6, rel=1e-3)


def test_rdp_orders_and_pld_tighter():
    assert len(rdp_mod.DEFAULT_RDP_ORDERS) == 99 + 53 + 4
    assert rdp_mod.DEFAULT_RDP_ORDERS[0] == pytest.approx(1.1)
    e_rdp, e_pld = _ours("rdp", 0.01, 1.0, 1000, 1e-5), _ours("pld", 0.01, 1.0, 1000, 1e-5)
    assert 0 < e_pld < e_rdp


@pytest.mark.parametrize("kind", ["rdp", "pld"])
def test_get_noise_multiplier(kind):
    q, steps = 0.02, 500
    sigma = get_noise_multiplier(target_epsilon=2.0, target_delta=1e-5, sample_rate=q,
                                 steps=steps, accountant=kind)
    eps = _ours(kind, q, sigma, steps, 1e-5)
    assert 2.0 - 0.01 <= eps <= 2.0
    assert _ours(kind, q, sigma * 0.97, steps, 1e-5) > 2.0  # and it is not wastefully large


def test_get_noise_multiplier_unreachable():
    with pytest.raises(ValueError, match="cannot be reached"):
        get_noise_multiplier(target_epsilon=1e-3, target_delta=1e-5, sample_rate=1.0,
                             steps=10 ** 6)
    with pytest.raises(ValueError, match="accountant"):
        get_noise_multiplier(target_epsilon=1, target_delta=1e-5, sample_rate=0.1, steps=10,
                             accountant="moments")


# --------------------------------------------------------------------------- per-sample grads

class _Mixed(nn.Module):
    """Every layer type with a rule, used once each, plus a reused Linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(7, 4, padding_idx=0)
        self.c1 = nn.Conv1d(4, 6, 3, padding=1)
        self.c2 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.c3 = nn.Conv2d(4, 4, 3, groups=2, dilation=1)
        self.ln = nn.LayerNorm(6)
        self.gn = nn.GroupNorm(2, 4)
        self.shared = nn.Linear(4, 4)
        self.fc = nn.Linear(6 * 5 + 4, 3)

    def forward(self, x, t):
        e = self.emb(t).transpose(1, 2)
        h = deepseek.tanh(self.c1(e)).transpose(1, 2)
        h = self.ln(h).reshape(h.shape[0], -1)
        z = self.gn(deepseek.tanh(self.c3(deepseek.tanh(self.c2(x))))).mean((2, 3))
        z = self.shared(deepseek.tanh(self.shared(z)))        # weight sharing: two calls
        return self.fc(deepseek.cat([h, z], 1))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_per_sample_grads_equal_per_example_backward(reduction):
    deepseek.manual_seed(0)
    model = _Mixed().double()
    gm = GradSampleModule(model, loss_reduction=reduction)
    b = 6
    x = deepseek.randn(b, 1, 11, 11, dtype=deepseek.float64)
    t = deepseek.randint(0, 7, (b, 5))
    t[0, 1] = 0                                  # a padding index
    y = deepseek.randint(0, 3, (b,))
    F.cross_entropy(gm(x, t), y, reduction=reduction).backward()
    got = {n: p.grad_sample for n, p in model.named_parameters()}
    batch_grad = {n: p.grad.clone() for n, p in model.named_parameters()}
    gm.remove_hooks()
    worst, scale = 0.0, 0.0
    for i in range(b):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1], t[i:i + 1]), y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            assert tuple(got[n].shape) == (b,) + tuple(p.shape), n
            worst = max(worst, (got[n][i] - p.grad).abs().max().item())
            scale = max(scale, p.grad.abs().max().item())
    assert scale > 1e-3 and worst < 1e-12, worst
    # and the batch gradient is the mean / sum of the per-sample ones
    for n, g in got.items():
        agg = g.mean(0) if reduction == "mean" else g.sum(0)
        assert (agg - batch_grad[n]).abs().max().item() < 1e-12, n
    assert float(got["emb.weight"][0, 0].abs().sum().item()) == 0.0   # padding row


class _CharLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(9, 4)
        self.lstm = DPLSTM(4, 6, num_layers=2, batch_first=True)
        # Linear layers on [B, T, features]: with T = 3, ``head`` takes the fast-clipping
        # materialised route (T^2 (in + out) > in * out) and ``wide`` the Gram-matrix one.
        self.head = nn.Linear(6, 40)
        self.wide = nn.Linear(40, 40)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.wide(deepseek.tanh(self.head(h))).mean(1)[:, :9]


def test_dplstm_matches_lstm_and_per_sample_grads():
    deepseek.manual_seed(0)
    for batch_first in (True, False):
        ref = nn.LSTM(3, 5, num_layers=2, batch_first=batch_first).double()
        m = DPLSTM.from_lstm(ref)
        x = deepseek.randn(4, 6, 3, dtype=deepseek.float64)
        (o1, (h1, c1)), (o2, (h2, c2)) = ref(x), m(x)
        for a, b in ((o1, o2), (h1, h2), (c1, c2)):
            assert a.shape == b.shape and (a - b).abs().max().item() < 1e-14
    model = _CharLSTM().double()
    gm = GradSampleModule(model)
    x = deepseek.randint(0, 9, (5, 7))
    y = deepseek.randint(0, 9, (5,))
    F.cross_entropy(gm(x), y).backward()
    got = {n: p.grad_sample for n, p in model.named_parameters()}
    gm.remove_hooks()
    worst = 0.0
    for i in range(5):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            worst = max(worst, (got[n][i] - p.grad).abs().max().item())
    assert worst < 1e-12, worst


def test_dpgru_and_dp_attention_match_fused_and_per_sample_grads():
    deepseek.manual_seed(0)
    f64 = deepseek.float64
    for batch_first in (True, False):
        ref = nn.GRU(3, 5, num_layers=2, batch_first=batch_first).double()
        m = DPGRU.from_gru(ref)
        x = deepseek.randn(4, 6, 3, dtype=f64)
        (o1, h1), (o2, h2) = ref(x), m(x)
        assert (o1 - o2).abs().max().item() < 1e-14 and (h1 - h2).abs().max().item() < 1e-14
        mha = nn.MultiheadAttention(8, 2, batch_first=batch_first).double()
        dmha = DPMultiheadAttention.from_mha(mha)
        q = deepseek.randn(3, 5, 8, dtype=f64)
        kv = deepseek.randn(3, 4, 8, dtype=f64) if batch_first else deepseek.randn(4, 3, 8, dtype=f64)
        if not batch_first:
            q = deepseek.randn(5, 3, 8, dtype=f64)
        kpm = deepseek.zeros(3, 4, dtype=deepseek.bool)
        kpm[0, 3] = True
        for kw in ({}, {"key_padding_mask": kpm}, {"attn_mask": deepseek.randn(5, 4, dtype=f64)},
                   {"average_attn_weights": False}):
            (a1, w1), (a2, w2) = mha(q, kv, kv, **kw), dmha(q, kv, kv, **kw)
            assert (a1 - a2).abs().max().item() < 1e-14 and (w1 - w2).abs().max().item() < 1e-14
        a1, _ = mha(q, q, q, need_weights=False, is_causal=True,
                    attn_mask=deepseek.ones(5, 5, dtype=deepseek.bool).triu(1))
        a2, _ = dmha(q, q, q, is_causal=True)
        assert (a1 - a2).abs().max().item() < 1e-14

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = DPGRU(4, 8, batch_first=True)
            self.att = DPMultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 3)

        def forward(self, x, kpm):
            h, _ = self.gru(x)
            a, _ = self.att(h, h, h, key_padding_mask=kpm)
            return self.head(a.mean(1))

    model = Net().double()
    gm = GradSampleModule(model)
    x = deepseek.randn(4, 5, 4, dtype=f64)
    kpm = deepseek.zeros(4, 5, dtype=deepseek.bool)
    kpm[1, 4] = True
    y = deepseek.randint(0, 3, (4,))
    F.cross_entropy(gm(x, kpm), y).backward()
    got = {n: p.grad_sample for n, p in model.named_parameters()}
    gm.remove_hooks()
    worst = 0.0
    for i in range(4):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1], kpm[i:i + 1]), y[i:i + 1]).backward()
        for n, p in model.named_parameters():
            worst = max(worst, (got[n][i] - p.grad).abs().max().item())
    assert worst < 1e-12, worst


@pytest.mark.parametrize("model_fn", ["mixed", "lstm"])
def test_ghost_clipping_equals_materialised(model_fn):
    def update(mode):
        deepseek.manual_seed(0)
        model = (_Mixed() if model_fn == "mixed" else _CharLSTM()).double()
        gm = GradSampleModule(model, grad_sample_mode=mode)
        opt = DPOptimizer(deepseek.optim.SGD(model.parameters(), lr=0.1), noise_multiplier=0,
                          allow_no_noise=True, max_grad_norm=0.05, expected_batch_size=6)
        opt.grad_sample_module = gm
        deepseek.manual_seed(5)
        if model_fn == "mixed":
            args = (deepseek.randn(6, 1, 11, 11, dtype=deepseek.float64),
                    deepseek.randint(0, 7, (6, 5)))
            y = deepseek.randint(0, 3, (6,))
        else:
            args, y = (deepseek.randint(0, 9, (6, 3)),), deepseek.randint(0, 9, (6,))
        opt.zero_grad()
        F.cross_entropy(gm(*args), y).backward()
        opt.pre_step()
        if mode == "ghost":
            assert all(getattr(p, "grad_sample", None) is None for p in model.parameters())
        return {n: p.grad.clone() for n, p in model.named_parameters()}, opt.last_clip_fraction
    (a, fa), (b, fb) = update("hooks"), update("ghost")
    assert fa == fb and fa > 0
    for n in a:
        assert (a[n] - b[n]).abs().max().item() < 1e-14, n


def test_batchnorm_and_unknown_layers_refused():
    with pytest.raises(UnsupportedModuleError, match="bn.*BatchNorm2d.*batch"):
        m = nn.Module()
        m.conv = nn.Conv2d(1, 2, 3)
        m.bn = nn.BatchNorm2d(2)
        GradSampleModule(m)
    with pytest.raises(UnsupportedModuleError, match=r"1 \(LSTM\).*no per-sample"):
        GradSampleModule(nn.Sequential(nn.Linear(3, 3), nn.LSTM(3, 3)))
    with pytest.raises(UnsupportedModuleError, match="MultiheadAttention"):
        GradSampleModule(nn.MultiheadAttention(4, 2))
    # frozen layers need no rule
    frozen = nn.LSTM(3, 3)
    for p in frozen.parameters():
        p.requires_grad_(False)
    GradSampleModule(nn.Sequential(nn.Linear(3, 3), frozen))


# --------------------------------------------------------------------------- DP-SGD step

def _tiny_batch(b=16, dtype=deepseek.float64):
    deepseek.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(dtype)
    x = deepseek.randn(b, 5, dtype=dtype) * 3
    y = deepseek.randint(0, 3, (b,))
    return model, x, y


def test_clipping_is_exact_without_noise():
    model, x, y = _tiny_batch()
    gm = GradSampleModule(model)
    opt = DPOptimizer(deepseek.optim.SGD(model.parameters(), lr=0.1), noise_multiplier=0,
                      max_grad_norm=0.5, expected_batch_size=20, allow_no_noise=True)
    opt.zero_grad()
    F.cross_entropy(gm(x), y).backward()
    params = list(model.parameters())
    gs = [p.grad_sample.clone() for p in params]
    opt.pre_step()
    b = x.shape[0]
    norms = sum((g.reshape(b, -1) ** 2).sum(1) for g in gs).sqrt()
    assert norms.max().item() > 0.5                      # some examples are clipped
    for p, g in zip(params, gs):
        want = sum(g[i] * min(1.0, 0.5 / (norms[i].item() + 1e-6)) for i in range(b)) / 20
        assert (p.grad - want).abs().max().item() < 1e-13
    # each clipped example's contribution has norm <= C
    f = (0.5 / (norms + 1e-6)).clamp(max=1.0)
    clipped = sum(((g * f.reshape(b, *([1] * (g.dim() - 1)))).reshape(b, -1) ** 2).sum(1)
                  for g in gs).sqrt()
    assert clipped.max().item() <= 0.5 + 1e-9
    assert opt.last_clip_fraction == pytest.approx(float((norms > 0.5).double().mean().item()))


def test_noise_statistics():
    # An empty batch: the gradient is pure noise N(0, (sigma C / B)^2).
    deepseek.manual_seed(3)
    lin = nn.Linear(100, 100).double()
    gm = GradSampleModule(lin)
    opt = DPOptimizer(deepseek.optim.SGD(lin.parameters(), lr=0.1), noise_multiplier=1.3,
                      max_grad_norm=2.0, expected_batch_size=4)
    opt.zero_grad()
    gm.del_grad_sample()
    opt.pre_step()
    g = lin.weight.grad
    want = 1.3 * 2.0 / 4
    assert abs(g.mean().item()) < 5 * want / 100                 # 10^4 samples
    assert g.std().item() == pytest.approx(want, rel=0.04)
    assert lin.bias.grad.std().item() == pytest.approx(want, rel=0.3)


def test_poisson_sampler_statistics():
    n, q = 2000, 0.05
    s = UniformWithReplacementSampler(num_samples=n, sample_rate=q, steps=200, seed=0)
    sizes, counts = [], [0] * n
    for batch in s:
        sizes.append(len(batch))
        assert len(set(batch)) == len(batch) and all(0 <= i < n for i in batch)
        for i in batch:
            counts[i] += 1
    mean = sum(sizes) / len(sizes)
    var = sum((v - mean) ** 2 for v in sizes) / (len(sizes) - 1)
    assert mean == pytest.approx(n * q, rel=0.05)                 # 100 +- 0.35 (s.e.)
    assert var == pytest.approx(n * q * (1 - q), rel=0.3)         # binomial, not fixed
    assert sum(counts) / n == pytest.approx(200 * q, rel=0.05)
    assert len(UniformWithReplacementSampler(num_samples=10, sample_rate=0.25)) == 4


def test_dp_data_loader_empty_batches_and_step():
    deepseek.manual_seed(0)
    ds = TensorDataset(deepseek.randn(5, 3), deepseek.tensor([0, 1, 0, 1, 1]))
    loader = DPDataLoader(ds, sample_rate=0.01, steps=20, seed=1)
    batches = list(loader)
    assert len(batches) == 20
    empty = [b for b in batches if b[0].shape[0] == 0]
    assert empty and tuple(empty[0][0].shape) == (0, 3) and empty[0][1].dtype == deepseek.int64
    # a DP step on an empty batch: no data gradient, only noise, and it is accounted
    model = nn.Linear(3, 2)
    engine = PrivacyEngine()
    gm, opt, _ = engine.make_private(module=model, optimizer=deepseek.optim.SGD(
        model.parameters(), lr=0.1), data_loader=DataLoader(ds, batch_size=1),
        noise_multiplier=1.0, max_grad_norm=1.0)
    w0 = model.weight.clone()
    opt.zero_grad()
    opt.step()
    assert opt.last_batch_size == 0 and engine.steps == 1
    assert (model.weight - w0).abs().max().item() > 0


def test_bad_arguments():
    model = nn.Linear(3, 2)
    loader = DataLoader(TensorDataset(deepseek.randn(8, 3), deepseek.zeros(8, dtype=deepseek.int64)),
                        batch_size=2)
    engine = PrivacyEngine()
    base = dict(module=model, optimizer=deepseek.optim.SGD(model.parameters(), lr=0.1),
                data_loader=loader)
    for sigma in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="noise_multiplier"):
            engine.make_private(**base, noise_multiplier=sigma, max_grad_norm=1.0)
    for c in (0, -0.5):
        with pytest.raises(ValueError, match="max_grad_norm"):
            engine.make_private(**base, noise_multiplier=1.0, max_grad_norm=c)
    for delta in (0, 1, 1.5, -1e-5):
        with pytest.raises(ValueError, match="delta"):
            engine.get_epsilon(delta)
        with pytest.raises(ValueError, match="delta"):
            engine.make_private_with_epsilon(**base, target_epsilon=1.0, target_delta=delta,
                                             epochs=1, max_grad_norm=1.0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        DPOptimizer(base["optimizer"], noise_multiplier=0, max_grad_norm=1.0,
                    expected_batch_size=2)
    with pytest.raises(ValueError, match="unknown accountant"):
        PrivacyEngine(accountant="gdp")
    # gradients without per-sample gradients (an unwrapped model) are refused, not noised
    opt = DPOptimizer(deepseek.optim.SGD(model.parameters(), lr=0.1), noise_multiplier=1.0,
                      max_grad_norm=1.0, expected_batch_size=2)
    opt.zero_grad()
    model(deepseek.randn(2, 3)).sum().backward()
    with pytest.raises(RuntimeError, match="no per-sample gradients"):
        opt.step()


# --------------------------------------------------------------------------- end to end

@pytest.mark.parametrize("accountant", ["rdp", "pld"])
def test_privacy_engine_end_to_end(accountant):
    deepseek.manual_seed(0)
    n = 600
    x = deepseek.randn(n, 6)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).to(deepseek.int64)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = deepseek.optim.SGD(model.parameters(), lr=1.0)
    loader = DataLoader(TensorDataset(x, y), batch_size=60, shuffle=True)
    engine = PrivacyEngine(accountant=accountant)
    gm, opt, dp_loader = engine.make_private_with_epsilon(
        module=model, optimizer=opt, data_loader=loader, target_epsilon=4.0,
        target_delta=1e-5, epochs=4, max_grad_norm=1.0)
    assert isinstance(dp_loader, DPDataLoader) and dp_loader.sample_rate == pytest.approx(0.1)
    assert engine.get_epsilon(1e-5) == 0.0
    for _ in range(4):
        for xb, yb in dp_loader:
            opt.zero_grad()
            if xb.shape[0]:
                F.cross_entropy(gm(xb), yb).backward()
            opt.step()
    assert engine.steps == 40
    eps = engine.get_epsilon(1e-5)
    assert 3.9 <= eps <= 4.0
    # the engine's ε is the accountant's for the steps it saw
    check = RDPAccountant() if accountant == "rdp" else PLDAccountant()
    check.history = [(opt.noise_multiplier, 0.1, 40)]
    assert eps == pytest.approx(check.get_epsilon(1e-5), rel=1e-12)
    acc = (gm(x).argmax(1) == y).double().mean().item()
    assert acc > 0.8, acc
    # the wrapped model's names and state_dict are the original's
    assert [k for k, _ in gm.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert set(gm.state_dict()) == set(model.state_dict())
