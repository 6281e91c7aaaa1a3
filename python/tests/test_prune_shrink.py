"""``prune.shrink`` (a deepseek extension): structurally pruned channels are cut out, the
shrunk model computes what the masked one did, has fewer parameters and a smaller file."""

import os

import numpy as np
import pytest

import deepseek
from deepseek import nn
from deepseek.nn import functional as F
from deepseek.nn.utils import prune


def _randomize_bn(model, seed):
    """Non-trivial BatchNorm statistics and affine terms (so dropped channels carry a
    non-zero constant that shrink has to fold)."""
    rng = np.random.default_rng(seed)
    with deepseek.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.running_mean.copy_(deepseek.from_numpy(rng.normal(0, 0.5, n).astype(np.float32)))
                m.running_var.copy_(deepseek.from_numpy(rng.uniform(0.5, 2, n).astype(np.float32)))
                m.weight.copy_(deepseek.from_numpy(rng.uniform(0.5, 1.5, n).astype(np.float32)))
                m.bias.copy_(deepseek.from_numpy(rng.normal(0, 0.5, n).astype(np.float32)))


def _cnn():
    deepseek.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3), nn.BatchNorm2d(12), nn.ReLU(), nn.Flatten(),
        nn.Linear(12 * 3 * 3, 20), nn.ReLU(), nn.Dropout(0.3), nn.Linear(20, 5))
    _randomize_bn(m, 1)
    return m.eval()


def _mlp():
    deepseek.manual_seed(1)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 24), nn.Tanh(),
                         nn.Dropout(0.1), nn.Linear(24, 24), nn.BatchNorm1d(24), nn.GELU(),
                         nn.Linear(24, 3)).eval()


def _out(model, x):
    model.eval()
    with deepseek.no_grad():
        return model(x).numpy()


def _nparams(model):
    return sum(p.numel() for p in model.parameters())


def _prune(layers, amount=0.5, remove=False, method="ln"):
    for m in layers:
        if method == "ln":
            prune.ln_structured(m, "weight", amount=amount, n=2, dim=0)
        else:
            prune.random_structured(m, "weight", amount=amount, dim=0)
        if remove:
            prune.remove(m, "weight")


@pytest.mark.parametrize("remove", [False, True])
@pytest.mark.parametrize("traced", [False, True])
def test_cnn_same_outputs_fewer_params_smaller_file(tmp_path, remove, traced):
    model = _cnn()
    x = deepseek.randn(4, 1, 10, 10)
    _prune([model[0], model[4], model[8]], remove=remove)
    ref = _out(model, x)
    small = prune.shrink(model, example_input=x if traced else None)
    assert [small[0].out_channels, small[1].num_features, small[4].in_channels] == [4, 4, 4]
    assert [small[4].out_channels, small[5].num_features] == [6, 6]
    assert (small[8].in_features, small[8].out_features, small[11].in_features) == (54, 10, 10)
    assert tuple(small[4].weight.shape) == (6, 4, 3, 3)
    assert not prune.is_pruned(small)
    np.testing.assert_allclose(_out(small, x), ref, rtol=1e-5, atol=1e-5)
    dense = _cnn()
    assert _nparams(small) < 0.6 * _nparams(dense)
    deepseek.save(dense.state_dict(), tmp_path / "dense.pt")
    deepseek.save(small.state_dict(), tmp_path / "small.pt")
    assert os.path.getsize(tmp_path / "small.pt") < 0.6 * os.path.getsize(tmp_path / "dense.pt")
    # the original is untouched and the shrunk model still trains
    assert model[0].weight.shape[0] == 8
    small.train()
    F.cross_entropy(small(x), deepseek.tensor([0, 1, 2, 3])).backward()
    assert small[4].weight.grad.shape == small[4].weight.shape


@pytest.mark.parametrize("method", ["ln", "random"])
def test_mlp_same_outputs(method):
    model = _mlp()
    _randomize_bn(model, 2)
    x = deepseek.randn(8, 16)
    _prune([model[0], model[2], model[5]], amount=0.4, method=method)
    ref = _out(model, x)
    small = prune.shrink(model)
    np.testing.assert_allclose(_out(small, x), ref, rtol=1e-5, atol=1e-5)
    assert (small[0].out_features, small[2].in_features) == (19, 19)
    assert (small[5].out_features, small[6].num_features, small[8].in_features) == (14, 14, 14)
    assert _nparams(small) < _nparams(model)


class _Net(nn.Module):
    """The shape of the deployment example: a custom forward between stubs."""

    def __init__(self, functional_relu=False):
        super().__init__()
        self.functional_relu = functional_relu
        self.conv1 = nn.Conv2d(3, 10, 3, padding=1, bias=False)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(10, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.AvgPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 4 * 4, 12, bias=False)
        self.fc2 = nn.Linear(12, 4)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x) if self.functional_relu else self.relu1(x)
        x = self.pool(self.bn2(self.conv2(x)))
        return self.fc2(self.fc1(self.flatten(x)))


def test_traced_custom_forward():
    deepseek.manual_seed(3)
    model = _Net().eval()
    _randomize_bn(model, 3)
    x = deepseek.randn(2, 3, 8, 8)
    _prune([model.conv1, model.conv2, model.fc1], amount=0.25)
    ref = _out(model, x)
    with pytest.raises(prune.ShrinkError, match="'conv1'.*pass example_input"):
        prune.shrink(model)  # no Sequential, no trace: the consumer is unknown
    small = prune.shrink(model, example_input=x)
    # conv1 has no bias: its dropped channels are exactly zero, the padded conv2 is fine
    assert (small.conv1.out_channels, small.conv2.in_channels) == (8, 8)
    # conv2's dropped channels carry bn2's shift into fc1: folded into a new fc1 bias
    assert small.fc1.in_features == 12 * 16 and small.fc1.bias is not None
    np.testing.assert_allclose(_out(small, x), ref, rtol=1e-5, atol=1e-5)


def test_padded_conv_fold_is_refused_unless_not_strict():
    deepseek.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 12, 3, padding=1), nn.Flatten(), nn.Linear(12 * 5 * 5, 5))
    _randomize_bn(model, 5)
    x = deepseek.randn(2, 1, 10, 10)
    _prune([model[0]])
    ref = _out(model, x)
    with pytest.raises(prune.ShrinkError, match="zero padding"):
        prune.shrink(model)
    with pytest.warns(UserWarning, match="border"):
        small = prune.shrink(model, strict=False)
    got = _out(small, x)
    assert got.shape == ref.shape and small[4].in_channels == 4


def test_unprovable_consumers_are_errors():
    x = deepseek.randn(2, 3, 8, 8)
    model = _Net(functional_relu=True).eval()
    _prune([model.conv1])
    with pytest.raises(prune.ShrinkError, match="'conv1'.*tensor op or functional"):
        prune.shrink(model, example_input=x)
    mlp = _mlp()
    _prune([mlp[8]], amount=1)
    with pytest.raises(prune.ShrinkError, match=r"'8'.*model's output"):
        prune.shrink(mlp)
    conv = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, groups=2))
    _prune([conv[0]], amount=1)
    with pytest.raises(prune.ShrinkError, match="grouped"):
        prune.shrink(conv)
    every = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2))
    _prune([every[0]], amount=1.0)
    with pytest.raises(prune.ShrinkError, match="every output channel of '0'"):
        prune.shrink(every)
    with pytest.raises(TypeError):
        prune.shrink("not a model")


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 6)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h) + h.sum(dim=1, keepdim=True)


def test_hidden_use_is_caught_by_the_check():
    deepseek.manual_seed(4)
    model = _Residual().eval()
    _prune([model.fc1], amount=2)
    with pytest.raises(prune.ShrinkError, match="way the module trace cannot see"):
        prune.shrink(model, example_input=deepseek.randn(3, 6))


def test_shrunk_model_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model = _cnn()
    _prune([model[0], model[4], model[8]])
    small = prune.shrink(model)
    x = deepseek.randn(3, 1, 10, 10)
    path = str(tmp_path / "small.onnx")
    deepseek.onnx.export(small, (x,), path, input_names=["x"], output_names=["y"])
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(y, _out(model, x), rtol=1e-5, atol=1e-5)
