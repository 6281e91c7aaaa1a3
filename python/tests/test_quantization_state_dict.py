"""Quantized layers in ``state_dict``: PyTorch's keys, an exact ``load_state_dict`` round trip
into a freshly converted model, ``deepseek.save``/``load``, and an int8 file about a quarter
of the f32 one."""

import os

import numpy as np
import pytest

import deepseek
from deepseek import nn
from deepseek.ao import quantization as dq

torch = pytest.importorskip("torch")
tq = torch.ao.quantization
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

FUSE = [["conv1", "relu1"], ["fc1", "relu2"]]


def _net(lib, stubs):
    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.quant = stubs.QuantStub()
            self.conv1 = lib.Conv2d(2, 16, 3, padding=1)
            self.relu1 = lib.ReLU()
            self.pool = lib.MaxPool2d(2)
            self.flatten = lib.Flatten()
            self.fc1 = lib.Linear(16 * 4 * 4, 128)
            self.relu2 = lib.ReLU()
            self.fc2 = lib.Linear(128, 5)
            self.dequant = stubs.DeQuantStub()

        def forward(self, x):
            x = self.flatten(self.pool(self.relu1(self.conv1(self.quant(x)))))
            return self.dequant(self.fc2(self.relu2(self.fc1(x))))
    return Net()


def _static(seed, per_channel=True):
    deepseek.manual_seed(seed)
    m = _net(nn, dq).eval()
    m.qconfig = dq.get_default_qconfig("x86" if per_channel else "qnnpack")
    p = dq.prepare(dq.fuse_modules(m, FUSE))
    rng = np.random.default_rng(seed)
    with deepseek.no_grad():
        for _ in range(3):
            p(deepseek.from_numpy(rng.standard_normal((4, 2, 8, 8)).astype(np.float32)))
    return m, dq.convert(p)


def _torch_static():
    torch.backends.quantized.engine = "x86"
    m = _net(torch.nn, tq).eval()
    m.qconfig = tq.get_default_qconfig("x86")
    p = tq.prepare(tq.fuse_modules(m, FUSE))
    p(torch.randn(4, 2, 8, 8))
    return tq.convert(p)


def _out(m, x):
    with deepseek.no_grad():
        return m(x).numpy()


def test_static_keys_match_pytorch():
    _, q = _static(0)
    tkeys = set(_torch_static().state_dict())
    dkeys = set(q.state_dict())
    # PyTorch packs a Linear's weight and bias in one `_packed_params._packed_params` tuple
    # (plus a `_packed_params.dtype` object); deepseek keeps them as tensors under the same
    # `_packed_params.` prefix. Everything else has PyTorch's name.
    packed = {k for k in tkeys if "._packed_params." in k}
    assert {k.split("._packed_params.")[0] for k in packed} == {"fc1", "fc2"}
    assert tkeys - packed <= dkeys
    assert dkeys - (tkeys - packed) == {
        f"{n}._packed_params.{w}" for n in ("fc1", "fc2") for w in ("weight", "weight_scale",
                                                                      "bias")} | {
        "conv1.weight_scale"}
    sd = q.state_dict()
    assert sd["conv1.weight"].dtype == deepseek.uint8 and tuple(sd["quant.scale"].shape) == (1,)
    assert tuple(sd["fc1.scale"].shape) == () and sd["fc1.zero_point"].dtype == deepseek.int64
    np.testing.assert_array_equal(
        sd["fc1._packed_params.weight"].numpy().view(np.int8),
        q.fc1.weight_int_repr().numpy())


@pytest.mark.parametrize("per_channel", [True, False])
def test_static_round_trip_exact_and_file_is_a_quarter(tmp_path, per_channel):
    float_model, q = _static(0, per_channel)
    _, other = _static(1, per_channel)   # same architecture, other weights and calibration
    x = deepseek.randn(3, 2, 8, 8)
    ref = _out(q, x)
    assert not np.array_equal(_out(other, x), ref)
    path = tmp_path / "int8.pt"
    deepseek.save(q.state_dict(), path)
    loaded = deepseek.load(path)
    other.load_state_dict(loaded)
    np.testing.assert_array_equal(_out(other, x), ref)
    assert other.fc2.scale == q.fc2.scale and other.quant.zero_point == q.quant.zero_point
    deepseek.save(float_model.state_dict(), tmp_path / "f32.pt")
    ratio = os.path.getsize(path) / os.path.getsize(tmp_path / "f32.pt")
    assert 0.2 < ratio < 0.35, ratio


def test_static_load_errors():
    _, q = _static(0)
    _, other = _static(1)
    sd = dict(q.state_dict())
    bad = dict(sd)
    bad["fc1._packed_params.weight"] = deepseek.zeros(128, 256)  # float, not int8 bytes
    with pytest.raises(RuntimeError, match="fc1.*uint8"):
        other.load_state_dict(bad)
    bad = dict(sd)
    bad["conv1.weight_scale"] = deepseek.ones(3)
    with pytest.raises(RuntimeError, match="conv1.weight_scale"):
        other.load_state_dict(bad)
    bad = dict(sd)
    del bad["fc2.scale"]
    with pytest.raises(RuntimeError, match='Missing key.*"fc2.scale"'):
        other.load_state_dict(bad)
    small = deepseek.quantization.quantize_dynamic(nn.Sequential(nn.Linear(4, 3)))
    with pytest.raises(RuntimeError, match="Unexpected key"):
        small.load_state_dict(sd)


def _mlp(seed):
    deepseek.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 32)).eval()


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_keys_round_trip_and_size(tmp_path, per_channel):
    from deepseek.quantization import (default_dynamic_qconfig, per_channel_dynamic_qconfig,
                                       quantize_dynamic)
    qc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    f32 = _mlp(0)
    q = quantize_dynamic(f32, {nn.Linear: qc})
    tm = tq.quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                                 torch.nn.Linear(256, 32)), {torch.nn.Linear})
    tkeys = set(tm.state_dict())
    dkeys = set(q.state_dict())
    assert {k for k in tkeys if "_packed_params" not in k} == {
        k for k in dkeys if "_packed_params" not in k} == {
        "0.scale", "0.zero_point", "2.scale", "2.zero_point"}
    assert {k.rsplit(".", 1)[0] for k in tkeys if "_packed_params" in k} == {
        k.rsplit(".", 1)[0] for k in dkeys if "_packed_params" in k}
    other = quantize_dynamic(_mlp(1), {nn.Linear: qc})
    x = deepseek.randn(5, 64)
    ref = _out(q, x)
    path = tmp_path / "dyn.pt"
    deepseek.save(q.state_dict(), path)
    other.load_state_dict(deepseek.load(path))
    np.testing.assert_array_equal(_out(other, x), ref)
    np.testing.assert_array_equal(other[0].weight_scale().numpy(), q[0].weight_scale().numpy())
    deepseek.save(f32.state_dict(), tmp_path / "f32.pt")
    ratio = os.path.getsize(path) / os.path.getsize(tmp_path / "f32.pt")
    assert 0.2 < ratio < 0.35, ratio


def test_pytorch_style_load_override():
    """A module overriding ``_load_from_state_dict`` with PyTorch's signature (here: renaming
    an old key) and calling ``super()`` loads as in PyTorch."""
    class Renamed(nn.Linear):
        def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                                  missing_keys, unexpected_keys, error_msgs):
            if prefix + "w" in state_dict:
                state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
            super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                          missing_keys, unexpected_keys, error_msgs)

    m = nn.Sequential(Renamed(3, 2))
    sd = {"0.w": deepseek.ones(2, 3), "0.bias": deepseek.zeros(2)}
    m.load_state_dict(sd, strict=False)
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight"):
        m.load_state_dict({"0.weight": deepseek.ones(3, 3), "0.bias": deepseek.zeros(2)})


@pytest.mark.parametrize("per_channel", [False, True])
def test_dynamic_lstm_keys_and_round_trip(tmp_path, per_channel):
    from deepseek.quantization import (default_dynamic_qconfig, per_channel_dynamic_qconfig,
                                       quantize_dynamic)
    qc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig

    def model(seed):
        deepseek.manual_seed(seed)
        return quantize_dynamic(nn.Sequential(nn.LSTM(6, 8, num_layers=2, bidirectional=True)),
                                {nn.LSTM: qc})

    tm = tq.quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(6, 8, num_layers=2,
                                                               bidirectional=True)),
                             {torch.nn.LSTM})
    q, other = model(0), model(1)
    # PyTorch: one opaque packed object per layer and direction at `..._all_weight_values.i.param`;
    # deepseek: the same prefixes, with the ih/hh int8 weights, scales and biases as tensors
    assert {k.split(".param")[0] for k in q.state_dict()} == {
        k.split(".param")[0] for k in tm.state_dict()} == {
        f"0._all_weight_values.{i}" for i in range(4)}
    assert len(q.state_dict()) == 4 * 2 * 3
    x = deepseek.randn(5, 2, 6)
    with deepseek.no_grad():
        ref = q(x)[0].numpy()
        assert not np.array_equal(other(x)[0].numpy(), ref)
    deepseek.save(q.state_dict(), tmp_path / "lstm.pt")
    other.load_state_dict(deepseek.load(tmp_path / "lstm.pt"))
    with deepseek.no_grad():
        np.testing.assert_array_equal(other(x)[0].numpy(), ref)
    bad = dict(q.state_dict())
    bad["0._all_weight_values.3.param.hh.weight"] = deepseek.zeros(8, 8, dtype=deepseek.uint8)
    with pytest.raises(RuntimeError, match="size mismatch for 0._all_weight_values.3.param.hh"):
        other.load_state_dict(bad)
