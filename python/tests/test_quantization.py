"""deepseek.quantization.quantize_dynamic against PyTorch's torch.ao.quantization.quantize_dynamic
(x86 engine): the same int8 weights and scales, and the same outputs to float rounding."""

import numpy as np
import pytest

import deepseek
from deepseek import nn
from deepseek.quantization import (default_dynamic_qconfig, per_channel_dynamic_qconfig,
                                   quantize_dynamic)

torch = pytest.importorskip("torch")


def _copy(dmod, tmod):
    with deepseek.no_grad():
        for (n, p), (tn, tp) in zip(dmod.named_parameters(), tmod.named_parameters()):
            assert n == tn
            p.copy_(deepseek.from_numpy(tp.detach().numpy().copy()))


def _models(sizes, seed=0):
    torch.manual_seed(seed)
    tl, dl = [], []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        tl.append(torch.nn.Linear(a, b))
        dl.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            tl.append(torch.nn.ReLU())
            dl.append(nn.ReLU())
    tm, dm = torch.nn.Sequential(*tl), nn.Sequential(*dl)
    _copy(dm, tm)
    return tm, dm


@pytest.mark.parametrize("per_channel", [False, True])
def test_linear_matches_pytorch(per_channel):
    torch.backends.quantized.engine = "x86"
    tm, dm = _models([96, 48])
    tqc = (torch.ao.quantization.per_channel_dynamic_qconfig if per_channel
           else torch.ao.quantization.default_dynamic_qconfig)
    dqc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    tq = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear: tqc}, dtype=torch.qint8)
    dq = quantize_dynamic(dm, {nn.Linear: dqc}, dtype=deepseek.qint8)
    assert isinstance(dq[0], nn.quantized.dynamic.Linear)
    assert isinstance(dm[0], nn.Linear)  # not inplace: the float model is untouched
    tw = tq[0].weight()
    np.testing.assert_array_equal(dq[0].weight_int_repr().numpy(), tw.int_repr().numpy())
    ts = tw.q_per_channel_scales().numpy() if per_channel else np.array([tw.q_scale()])
    np.testing.assert_allclose(dq[0].weight_scale().numpy(), ts, rtol=1e-7)
    rng = np.random.default_rng(1)
    for shape in [(16, 96), (3, 5, 96), (1, 96)]:
        x = rng.standard_normal(shape).astype(np.float32) * 3 + 0.5
        want = tq(torch.from_numpy(x)).numpy()
        got = dq(deepseek.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mlp_matches_pytorch():
    tm, dm = _models([64, 128, 128, 10], seed=3)
    tq = torch.ao.quantization.quantize_dynamic(tm, {torch.nn.Linear}, dtype=torch.qint8)
    dq = quantize_dynamic(dm, {nn.Linear}, dtype=deepseek.qint8)
    x = np.random.default_rng(2).standard_normal((32, 64)).astype(np.float32)
    want = tq(torch.from_numpy(x)).numpy()
    got = dq(deepseek.from_numpy(x)).numpy()
    # a hidden value one float rounding apart can land on the other side of a quantization
    # step; nearly every output is equal, all are within a step of the last layer
    close = np.isclose(got, want, rtol=1e-5, atol=1e-5)
    assert close.mean() > 0.95
    np.testing.assert_allclose(got, want, atol=2e-2)
    fm = dm(deepseek.from_numpy(x)).detach().numpy()
    assert np.abs(got - fm).max() < 0.1  # and close to the float model


def test_names_and_types():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.enc(x))

    net = Net()
    q = quantize_dynamic(net, {"head": per_channel_dynamic_qconfig})
    assert isinstance(q.head, nn.quantized.dynamic.Linear)
    assert q.head.qscheme == "per_channel_symmetric"
    assert isinstance(q.enc[0], nn.Linear)
    q2 = deepseek.ao.quantization.quantize_dynamic(net, inplace=True)
    assert q2 is net and isinstance(net.enc[0], nn.quantized.dynamic.Linear)
    assert deepseek.quantization.int8_isa() in deepseek.quantization.int8_isas()
    assert "qint8" in repr(q2.head)
    q3 = quantize_dynamic(q2)  # a copy of an already quantized model
    assert q3.head is not q2.head and q3.head._packed is q2.head._packed


def test_every_kernel_gives_the_same_output():
    w = deepseek.randn(37, 70)
    b = deepseek.randn(37)
    x = deepseek.randn(9, 70)
    outs = [deepseek._C.DynamicQuantLinear(w, b, True, True, isa).forward(x).numpy()
            for isa in deepseek.quantization.int8_isas()]
    for o in outs[1:]:
        np.testing.assert_array_equal(o, outs[0])


def test_bad_input():
    lin = nn.Linear(4, 3)
    with deepseek.no_grad():
        lin.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        quantize_dynamic(nn.Sequential(lin))
    with deepseek.no_grad():
        lin.weight.zero_()
    with pytest.raises(ValueError, match="all zeros"):
        quantize_dynamic(nn.Sequential(lin))
    with pytest.raises(ValueError, match="Conv2d"):
        quantize_dynamic(nn.Sequential(nn.Conv2d(1, 1, 3)), {nn.Conv2d})
    with pytest.raises(ValueError, match="dtype"):
        quantize_dynamic(nn.Sequential(nn.Linear(2, 2)), dtype="float16")
    q = quantize_dynamic(nn.Sequential(nn.Linear(4, 3)))
    with pytest.raises(ValueError, match="in_features"):
        q(deepseek.randn(2, 5))
    with pytest.raises(ValueError, match="non-finite"):
        q(deepseek.full((2, 4), float("inf")))


# ------------------------------------------------------------------ dynamic LSTM

@pytest.mark.parametrize("num_layers,bidirectional,batch_first,per_channel", [
    (1, False, False, False), (2, False, True, False), (1, True, False, False),
    (2, True, True, True)])
def test_dynamic_lstm_matches_pytorch(num_layers, bidirectional, batch_first, per_channel):
    torch.manual_seed(0)
    tl = torch.nn.LSTM(12, 16, num_layers=num_layers, bidirectional=bidirectional,
                       batch_first=batch_first)
    dl = nn.LSTM(12, 16, num_layers=num_layers, bidirectional=bidirectional,
                 batch_first=batch_first)
    _copy(dl, tl)
    tqc = (torch.ao.quantization.per_channel_dynamic_qconfig if per_channel
           else torch.ao.quantization.default_dynamic_qconfig)
    dqc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    torch.backends.quantized.engine = "x86"
    tq = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(tl),
                                                {torch.nn.LSTM: tqc}, dtype=torch.qint8)
    dqm = quantize_dynamic(nn.Sequential(dl), {nn.LSTM: dqc}, dtype=deepseek.qint8)
    assert type(dqm[0]).__name__ == "LSTM" and dqm[0].__module__.endswith("dynamic")
    rng = np.random.default_rng(0)
    shape = (3, 7, 12) if batch_first else (7, 3, 12)
    x = rng.standard_normal(shape).astype(np.float32)
    dirs = 2 if bidirectional else 1
    h0 = rng.standard_normal((num_layers * dirs, 3, 16)).astype(np.float32) * 0.1
    c0 = rng.standard_normal((num_layers * dirs, 3, 16)).astype(np.float32) * 0.1
    with torch.no_grad():
        to, (th, tc) = tq[0](torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
        fo, _ = tl(torch.from_numpy(x), (torch.from_numpy(h0), torch.from_numpy(c0)))
    do, (dh, dc) = dqm[0](deepseek.tensor(x), (deepseek.tensor(h0), deepseek.tensor(c0)))
    np.testing.assert_allclose(do.numpy(), to.numpy(), atol=1e-5)
    np.testing.assert_allclose(dh.numpy(), th.numpy(), atol=1e-5)
    np.testing.assert_allclose(dc.numpy(), tc.numpy(), atol=1e-5)
    # and int8 is close to float
    assert np.abs(do.numpy() - fo.numpy()).max() < 0.05


def test_dynamic_lstm_default_spec_and_errors():
    dl = nn.LSTM(4, 8)
    q = quantize_dynamic(nn.Sequential(dl, nn.Linear(8, 2)))
    assert type(q[0]).__module__.endswith("dynamic") and type(q[1]).__module__.endswith("dynamic")
    out, (h, c) = q[0](deepseek.randn(5, 4))  # unbatched
    assert tuple(out.shape) == (5, 8) and tuple(h.shape) == (1, 8)
    with pytest.raises(ValueError, match="input_size|size"):
        q[0](deepseek.randn(5, 2, 3))
    bad = nn.LSTM(4, 8)
    with deepseek.no_grad():
        bad.weight_hh_l0.fill_(float("nan"))
    with pytest.raises(ValueError, match="weight_hh_l0"):
        quantize_dynamic(nn.Sequential(bad), {nn.LSTM})
