"""Static post-training quantization and quantization-aware training (deepseek.quantization,
eager mode) against PyTorch's torch.ao.quantization (x86 engine): the same observers' scales and
zero points, the same fused and converted models, outputs within one quantization step."""

import numpy as np
import pytest

import deepseek
from deepseek import nn
from deepseek.ao import quantization as dq

torch = pytest.importorskip("torch")
tq = torch.ao.quantization
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _d(a):
    return deepseek.tensor(np.ascontiguousarray(a, dtype=np.float32))


def _copy_state(dm, tm):
    """Copies PyTorch's parameters and buffers into the deepseek model (same names)."""
    tsd = tm.state_dict()
    with deepseek.no_grad():
        for name, v in dm.state_dict().items():
            src = tsd[name].detach().numpy().copy()
            v.copy_(deepseek.from_numpy(src.astype(v.numpy().dtype)))


# ------------------------------------------------------------------ observers

@pytest.mark.parametrize("name,kw", [
    ("MinMaxObserver", {}),
    ("MinMaxObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"}),
    ("MovingAverageMinMaxObserver", {"averaging_constant": 0.1}),
    ("HistogramObserver", {"reduce_range": True}),
    ("HistogramObserver", {}),
    ("PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"}),
    ("PerChannelMinMaxObserver", {"ch_axis": 1}),
    ("MovingAveragePerChannelMinMaxObserver", {"dtype": "qint8",
                                               "qscheme": "per_channel_symmetric"}),
])
def test_observers_match_pytorch(name, kw):
    tkw = {k: getattr(torch, v) if isinstance(v, str) else v for k, v in kw.items()}
    dkw = {k: getattr(deepseek, v) if isinstance(v, str) else v for k, v in kw.items()}
    t, d = getattr(tq, name)(**tkw), getattr(dq, name)(**dkw)
    rng = np.random.default_rng(0)
    for i in range(4):
        a = rng.standard_normal((8, 16)).astype(np.float32) * (1 + i) + 0.3 * i
        if i == 2:
            a[0, 0] = 25.0  # an outlier the histogram search cuts off
        t(_t(a))
        d(_d(a))
    ts, tz = t.calculate_qparams()
    ds_, dz = d.calculate_qparams()
    np.testing.assert_allclose(ds_, ts.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(dz, tz.numpy())


def test_observer_errors():
    with pytest.raises(RuntimeError, match="no calibration data"):
        dq.HistogramObserver().calculate_qparams()
    with pytest.raises(ValueError, match="non-finite"):
        dq.MinMaxObserver()(_d([1.0, float("nan")]))
    with pytest.raises(ValueError, match="per-channel"):
        dq.PerChannelMinMaxObserver(qscheme=deepseek.per_tensor_affine)


# ------------------------------------------------------------------ PTQ

class _TorchCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.relu1 = torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.relu2 = torch.nn.ReLU()
        self.flatten = torch.nn.Flatten()
        self.fc1 = torch.nn.Linear(6 * 2 * 2, 16)
        self.relu3 = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(16, 5)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.pool(self.relu1(self.bn1(self.conv1(self.quant(x)))))
        x = self.flatten(self.relu2(self.conv2(x)))
        return self.dequant(self.fc2(self.relu3(self.fc1(x))))


class _DeepseekCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.quant = dq.QuantStub()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(6 * 2 * 2, 16)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(16, 5)
        self.dequant = dq.DeQuantStub()

    def forward(self, x):
        x = self.pool(self.relu1(self.bn1(self.conv1(self.quant(x)))))
        x = self.flatten(self.relu2(self.conv2(x)))
        return self.dequant(self.fc2(self.relu3(self.fc1(x))))


FUSE = [["conv1", "bn1", "relu1"], ["conv2", "relu2"], ["fc1", "relu3"]]


def _pair(seed=0):
    torch.manual_seed(seed)
    tm = _TorchCNN()
    with torch.no_grad():  # non-trivial batch-norm statistics to fold
        tm.bn1.running_mean.uniform_(-0.2, 0.2)
        tm.bn1.running_var.uniform_(0.5, 2.0)
        tm.bn1.weight.uniform_(0.5, 1.5)
        tm.bn1.bias.uniform_(-0.1, 0.1)
    dm = _DeepseekCNN()
    _copy_state(dm, tm)
    return tm.eval(), dm.eval()


def _calib(n=3, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((4, 1, 8, 8)).astype(np.float32) for _ in range(n)]


def _ptq(tm, dm, qconfig_t, qconfig_d, batches):
    torch.backends.quantized.engine = "x86"
    tm.qconfig, dm.qconfig = qconfig_t, qconfig_d
    tf = tq.fuse_modules(tm, FUSE)
    df = dq.fuse_modules(dm, FUSE)
    tp, dp = tq.prepare(tf), dq.prepare(df)
    for b in batches:
        tp(_t(b))
        dp(_d(b))
    return tp, dp, tq.convert(tp), dq.convert(dp)


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_static_ptq_matches_pytorch(backend):
    tm, dm = _pair()
    batches = _calib()
    tp, dp, tqm, dqm = _ptq(tm, dm, tq.get_default_qconfig(backend),
                            dq.get_default_qconfig(backend), batches)
    # fused float models agree (BN folded into conv1)
    x = batches[0]
    np.testing.assert_allclose(dp(_d(x)).detach().numpy(), tp(_t(x)).detach().numpy(), atol=1e-5)
    # every layer's output scale / zero point: equal, or within one step
    for name in ["quant", "conv1", "conv2", "fc1", "fc2"]:
        ts, tz = getattr(tqm, name).scale, getattr(tqm, name).zero_point
        ds_, dz = getattr(dqm, name).scale, getattr(dqm, name).zero_point
        assert abs(ds_ - float(ts)) <= 1e-6 * float(ts), (name, ds_, ts)
        assert abs(dz - int(tz)) <= 1, (name, dz, tz)
    # weights: the same int8 values and scales
    for name in ["conv1", "conv2", "fc1", "fc2"]:
        tw = getattr(tqm, name).weight()
        dmod = getattr(dqm, name)
        dint = dmod.weight_int_repr().numpy()
        tint = tw.int_repr().numpy()
        assert np.abs(dint - tint).max() <= 1, name
        tsc = (tw.q_per_channel_scales().numpy() if tw.qscheme() == torch.per_channel_affine
               else np.array([tw.q_scale()]))
        np.testing.assert_allclose(dmod.weight_scale().numpy(), tsc, rtol=1e-6)
    # int8 outputs: within one quantization step of PyTorch's
    rng = np.random.default_rng(7)
    xt = rng.standard_normal((6, 1, 8, 8)).astype(np.float32)
    step = dqm.fc2.scale
    yt = tqm(_t(xt)).numpy()
    yd = dqm(_d(xt)).numpy()
    assert np.abs(yd - yt).max() <= step * 1.01 + 1e-6, np.abs(yd - yt).max() / step
    # and the quantized model is close to the float one
    yf = dp(_d(xt)).detach().numpy()
    assert np.abs(yd - yf).max() < 0.1 * np.abs(yf).max() + 4 * step


def test_quantized_layers_types_and_intermediate_values():
    tm, dm = _pair(3)
    _, _, tqm, dqm = _ptq(tm, dm, tq.get_default_qconfig("x86"), dq.get_default_qconfig("x86"),
                          _calib(2, 5))
    assert type(dqm.conv1).__name__ == "ConvReLU2d"
    assert type(dqm.fc1).__name__ == "LinearReLU"
    assert type(dqm.fc2).__name__ == "Linear"
    assert isinstance(dqm.bn1, nn.Identity)
    assert type(dqm.pool).__name__ == "SameScale"
    x = _calib(1, 11)[0]
    qx_t = tqm.quant(_t(x))
    qx_d = dqm.quant(_d(x))
    np.testing.assert_array_equal(qx_d.int_repr().numpy(), qx_t.int_repr().numpy())
    # the first fused conv+relu on identical quantized input: integers within one step
    c_t = tqm.conv1(qx_t).int_repr().numpy().astype(int)
    c_d = dqm.conv1(qx_d).int_repr().numpy().astype(int)
    assert np.abs(c_t - c_d).max() <= 1
    assert (c_t == c_d).mean() > 0.99


def test_ptq_other_observers():
    """MinMax activations with per-tensor weights, and moving averages with per-channel ones."""
    for t_act, d_act, t_w, d_w in [
        (tq.MinMaxObserver.with_args(reduce_range=True),
         dq.MinMaxObserver.with_args(reduce_range=True),
         tq.default_weight_observer, dq.default_weight_observer),
        (tq.MovingAverageMinMaxObserver.with_args(reduce_range=True),
         dq.MovingAverageMinMaxObserver.with_args(reduce_range=True),
         tq.default_per_channel_weight_observer, dq.default_per_channel_weight_observer),
    ]:
        tm, dm = _pair(1)
        _, _, tqm, dqm = _ptq(tm, dm, tq.QConfig(activation=t_act, weight=t_w),
                              dq.QConfig(activation=d_act, weight=d_w), _calib(3, 2))
        x = _calib(1, 9)[0]
        yt, yd = tqm(_t(x)).numpy(), dqm(_d(x)).numpy()
        assert np.abs(yd - yt).max() <= dqm.fc2.scale * 1.01 + 1e-6


def test_ptq_bad_input():
    _, dm = _pair()
    dm.qconfig = dq.get_default_qconfig("x86")
    prepared = dq.prepare(dq.fuse_modules(dm, FUSE))
    with pytest.raises(RuntimeError, match="saw no calibration data"):
        dq.convert(prepared)
    # all-zero activations: a degenerate range
    prepared(_d(np.zeros((2, 1, 8, 8))))
    with pytest.raises(ValueError, match="degenerate"):
        dq.convert(prepared)
    # NaN weights: at calibration (NaN outputs reach fc2's observer) or, set after
    # calibration, at convert
    _, dm2 = _pair()
    dm2.qconfig = dq.get_default_qconfig("x86")
    p2 = dq.prepare(dm2)
    p2(_d(_calib(1)[0]))
    with deepseek.no_grad():
        p2.fc2.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="fc2.*non-finite"):
        dq.convert(p2)
    with pytest.raises(ValueError, match="fc2.*non-finite"):
        p2(_d(_calib(1)[0]))
    # NaN calibration data
    _, dm3 = _pair()
    dm3.qconfig = dq.get_default_qconfig("x86")
    p3 = dq.prepare(dm3)
    bad = _calib(1)[0]
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        p3(_d(bad))
    # no qconfig anywhere
    _, dm4 = _pair()
    with pytest.raises(ValueError, match="qconfig"):
        dq.prepare(dm4)
    # fusing batch norm in training mode, unknown patterns
    _, dm5 = _pair()
    dm5.train()
    with pytest.raises(ValueError, match="eval"):
        dq.fuse_modules(dm5, [["conv1", "bn1"]])
    with pytest.raises(ValueError, match="cannot fuse"):
        dq.fuse_modules(dm5.eval(), [["conv1", "pool"]])
    # a converted model given float input
    tm, dm6 = _pair()
    _, _, _, dqm = _ptq(tm, dm6, tq.get_default_qconfig("x86"), dq.get_default_qconfig("x86"),
                        _calib(1))
    with pytest.raises(TypeError, match="quantized tensor"):
        dqm.fc2(_d(np.zeros((1, 16))))


def test_quantize_per_tensor_matches_pytorch():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1000).astype(np.float32) * 3
    for scale, zp in [(0.05, 128), (0.1, 0), (0.0123, 57)]:
        t = torch.quantize_per_tensor(_t(x), scale, zp, torch.quint8)
        d = deepseek.quantize_per_tensor(_d(x), scale, zp, deepseek.quint8)
        np.testing.assert_array_equal(d.int_repr().numpy(), t.int_repr().numpy())
        np.testing.assert_allclose(d.dequantize().numpy(), t.dequantize().numpy(), rtol=1e-6)
    with pytest.raises(ValueError):
        deepseek.quantize_per_tensor(_d(x), 0.0, 0, deepseek.quint8)


# ------------------------------------------------------------------ QAT

def test_fake_quantize_forward_and_straight_through_gradient():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 7)).astype(np.float32) * 2
    ta = _t(a).requires_grad_()
    da = _d(a).requires_grad_()
    yt = torch.fake_quantize_per_tensor_affine(ta, 0.05, 60, 0, 127)
    yd = deepseek.fake_quantize_per_tensor_affine(da, 0.05, 60, 0, 127)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), atol=1e-6)
    g = rng.standard_normal((5, 7)).astype(np.float32)
    (yt * _t(g)).sum().backward()
    (yd * _d(g)).sum().backward()
    np.testing.assert_allclose(da.grad.numpy(), ta.grad.numpy(), atol=1e-6)
    # per channel
    s = np.array([0.02, 0.05, 0.1, 0.03, 0.07], np.float32)
    z = np.zeros(5, np.int64)
    tb = _t(a).requires_grad_()
    db = _d(a).requires_grad_()
    yt = torch.fake_quantize_per_channel_affine(tb, _t(s), torch.from_numpy(z).int(), 0, -128,
                                                127)
    yd = deepseek.fake_quantize_per_channel_affine(db, s, z, 0, -128, 127)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), atol=1e-6)
    (yt * _t(g)).sum().backward()
    (yd * _d(g)).sum().backward()
    np.testing.assert_allclose(db.grad.numpy(), tb.grad.numpy(), atol=1e-6)


def _qat_pair():
    tm, dm = _pair(4)
    tm.train()
    dm.train()
    tm.qconfig = tq.get_default_qat_qconfig("x86", version=0)
    dm.qconfig = dq.get_default_qat_qconfig("x86")
    tf = tq.fuse_modules_qat(tm, FUSE)
    df = dq.fuse_modules_qat(dm, FUSE)
    return tq.prepare_qat(tf), dq.prepare_qat(df)


def test_qat_matches_pytorch_and_converts():
    tp, dp = _qat_pair()
    assert type(dp.conv1).__name__ == "ConvBnReLU2d"
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    # one training step on each side: forward equal, then the same SGD update
    topt = torch.optim.SGD(tp.parameters(), lr=0.1)
    dopt = deepseek.optim.SGD(dp.parameters(), lr=0.1)
    lt = torch.nn.functional.cross_entropy(tp(_t(x)), torch.from_numpy(y))
    ld = nn.functional.cross_entropy(dp(_d(x)), deepseek.tensor(y))
    np.testing.assert_allclose(ld.item(), lt.item(), rtol=1e-4)
    lt.backward()
    ld.backward()
    tg = dict(tp.named_parameters())
    for name, p in dp.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tg[name].grad.numpy(), atol=1e-6,
                                   err_msg=name)
    topt.step()
    dopt.step()
    # a few more steps on deepseek alone: the loss goes down
    losses = []
    for _ in range(15):
        dopt.zero_grad()
        loss = nn.functional.cross_entropy(dp(_d(x)), deepseek.tensor(y))
        loss.backward()
        dopt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    # convert: int8 model within a step or two of the fake-quantized model in eval mode
    dp.eval()
    dq.disable_observer(dp)
    yf = dp(_d(x)).detach().numpy()
    dqm = dq.convert(dp)
    assert type(dqm.conv1).__name__ == "ConvReLU2d"
    yq = dqm(_d(x)).numpy()
    step = dqm.fc2.scale
    # the fake quantizer clips at quant_max = 127 (reduce_range); the int8 layer, like
    # PyTorch's, keeps the whole uint8 range: compare below the clip, and beyond it the
    # int8 value may only be larger
    clip = (127 - dqm.fc2.zero_point) * step
    inside = yf < clip - step / 2
    assert inside.mean() > 0.5
    assert np.abs(yq - yf)[inside].max() <= 3 * step, np.abs(yq - yf)[inside].max() / step
    assert np.all(yq[~inside] >= yf[~inside] - 3 * step)


def test_qat_bad_input():
    _, dm = _pair()
    with pytest.raises(ValueError, match="qconfig"):
        dq.prepare_qat(dm.train())
    with pytest.raises(ValueError, match="cannot fuse"):
        dq.fuse_modules_qat(dm, [["fc1", "bn1"]])
