"""deepseek.onnx.export: every export passes onnx.checker (full_check) and ONNX Runtime's
outputs equal deepseek's within 1e-5, dynamic axes at two batch sizes; unsupported layers
and ops are errors that name them."""

import numpy as np
import pytest

import deepseek
from deepseek import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _check(model, args, tmp_path, dynamic=None, more=(), atol=1e-5, **kw):
    args = args if isinstance(args, tuple) else (args,)
    path = tmp_path / "m.onnx"
    names = [f"in{i}" for i in range(len(args))]
    deepseek.onnx.export(model, args, path, input_names=names, dynamic_axes=dynamic, **kw)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model.eval()
    for a in (args,) + tuple(more):
        want = model(*a)
        want = [want] if isinstance(want, deepseek.Tensor) else list(_flat(want))
        got = sess.run(None, {n: t.numpy() for n, t in zip(names, a)})
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-5, atol=atol)
    return path


def _flat(o):
    for v in o:
        if isinstance(v, (tuple, list)):
            yield from _flat(v)
        else:
            yield v


def test_mlp_and_activations_dynamic_batch(tmp_path):
    deepseek.manual_seed(0)
    m = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                      nn.Linear(32, 32), nn.GELU("tanh"), nn.Dropout(0.3), nn.Tanh(),
                      nn.Linear(32, 16), nn.SiLU(), nn.LeakyReLU(0.2), nn.ELU(), nn.Sigmoid(),
                      nn.Softplus(), nn.Linear(16, 5), nn.Softmax(dim=-1))
    _check(m, deepseek.randn(4, 12), tmp_path, dynamic={"in0": {0: "batch"}},
           more=[(deepseek.randn(9, 12),)])


def test_embedding_layernorm(tmp_path):
    deepseek.manual_seed(1)
    m = nn.Sequential(nn.Embedding(50, 16), nn.LayerNorm(16), nn.Linear(16, 8),
                      nn.LogSoftmax(dim=-1))
    idx = deepseek.randint(0, 50, (2, 7))
    _check(m, idx, tmp_path, dynamic={"in0": {0: "batch", 1: "seq"}},
           more=[(deepseek.randint(0, 50, (3, 4)),)])


@pytest.mark.parametrize("kind,batch_first,bidir,layers", [
    ("LSTM", True, False, 1), ("LSTM", False, True, 2), ("GRU", True, True, 2),
    ("GRU", False, False, 1)])
def test_rnn(tmp_path, kind, batch_first, bidir, layers):
    deepseek.manual_seed(2)
    rnn = getattr(nn, kind)(6, 10, num_layers=layers, batch_first=batch_first,
                            bidirectional=bidir)
    x = deepseek.randn(3, 5, 6)
    x2 = deepseek.randn(2, 8, 6)
    _check(rnn, x, tmp_path, dynamic={"in0": {0: "a", 1: "b"}}, more=[(x2,)])


def test_text_generator_like(tmp_path):
    class TextGen(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(30, 12)
            self.lstm = nn.LSTM(12, 24, num_layers=2, batch_first=True)
            self.fc = nn.Linear(24, 30)

        def forward(self, x):
            out, _ = self.lstm(self.emb(x))
            return self.fc(out)

    deepseek.manual_seed(3)
    _check(TextGen(), deepseek.randint(0, 30, (2, 9)), tmp_path,
           dynamic={"in0": {0: "batch", 1: "seq"}}, more=[(deepseek.randint(0, 30, (1, 4)),)])


def test_cnn(tmp_path):
    deepseek.manual_seed(4)
    m = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, stride=2, groups=2), nn.ReLU(),
                      nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 10))
    m.train()
    for _ in range(3):  # non-trivial running statistics
        m(deepseek.randn(8, 1, 14, 14))
    _check(m, deepseek.randn(2, 1, 14, 14), tmp_path, dynamic={"in0": [0]},
           more=[(deepseek.randn(5, 1, 14, 14),)])


def test_custom_forward_tensor_ops(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Conv1d(4, 4, 3, padding=1)
            self.pos = nn.Parameter(deepseek.randn(8))

        def forward(self, x, y):
            h = self.a(x) + self.pos * 2.0
            h = h.view(h.size(0), 2, 4).transpose(1, 2)  # [B, 4, 2]
            h = deepseek.cat([h, h * 0.5], dim=-1)  # [B, 4, 4]
            h = self.b(h)
            z = nn.functional.relu(h).mean(-1)  # [B, 4]
            return z[:, 1:] - y.sum(1, keepdim=True), h[:, -1].flatten(1)

    deepseek.manual_seed(5)
    args = (deepseek.randn(3, 8), deepseek.randn(3, 6))
    _check(Net(), args, tmp_path, dynamic={"in0": {0: "b"}, "in1": {0: "b"}},
           more=[(deepseek.randn(6, 8), deepseek.randn(6, 6))])


def test_unsupported_is_an_error(tmp_path):
    m = nn.Sequential(nn.Linear(4, 4), nn.GroupNorm(2, 4))
    with pytest.raises(deepseek.onnx.ExportError, match="GroupNorm"):
        deepseek.onnx.export(m, deepseek.randn(2, 4), tmp_path / "x.onnx")

    class Cum(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x.cumsum(1))

    with pytest.raises(deepseek.onnx.ExportError, match="(?i)cumsum"):
        deepseek.onnx.export(Cum(), deepseek.randn(2, 4), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    # the patched tensor methods are restored after a failed export
    assert deepseek.Tensor.__add__ is not None and (deepseek.ones(2) + 1).sum().item() == 4
    with pytest.raises(ValueError, match="opset"):
        deepseek.onnx.export(m, deepseek.randn(2, 4), tmp_path / "x.onnx", opset_version=9)


def test_gpt_block_from_tensor_ops(tmp_path):
    """A GPT-style block written with tensor ops (causal self-attention with an additive mask
    buffer, LayerNorm, GELU MLP, residuals)."""

    class Block(nn.Module):
        def __init__(self, d=16, h=2, t=6):
            super().__init__()
            self.h = h
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
            mask = np.triu(np.full((t, t), -1e9, dtype=np.float32), 1)
            self.register_buffer("mask", deepseek.from_numpy(mask))

        def forward(self, x):
            b, t, d = x.shape
            hd = d // self.h
            qkv = self.qkv(self.ln1(x))
            q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
            q = q.reshape(b, t, self.h, hd).transpose(1, 2)
            k = k.reshape(b, t, self.h, hd).transpose(1, 2)
            v = v.reshape(b, t, self.h, hd).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / hd ** 0.5) + self.mask
            y = nn.functional.softmax(att, dim=-1) @ v
            x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
            return x + self.mlp(self.ln2(x))

    deepseek.manual_seed(6)
    _check(Block(), deepseek.randn(2, 6, 16), tmp_path, dynamic={"in0": {0: "batch"}},
           more=[(deepseek.randn(5, 6, 16),)])


@pytest.mark.parametrize("kind,layers,bidir", [("LSTM", 2, True), ("GRU", 1, False),
                                               ("GRU", 2, True)])
def test_rnn_initial_state(tmp_path, kind, layers, bidir):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, kind)(4, 8, num_layers=layers, bidirectional=bidir,
                                         batch_first=True)

        def forward(self, x, h0, c0):
            if kind == "LSTM":
                out, (h, c) = self.rnn(x, (h0, c0))
                return out, h, c
            out, h = self.rnn(x, h0)
            return out, h + c0 * 0.0

    deepseek.manual_seed(7)
    nd = layers * (2 if bidir else 1)

    def inputs(b, t):
        return deepseek.randn(b, t, 4), deepseek.randn(nd, b, 8), deepseek.randn(nd, b, 8)

    dyn = {"in0": {0: "b", 1: "t"}, "in1": {1: "b"}, "in2": {1: "b"}}
    _check(Net(), inputs(2, 5), tmp_path, dynamic=dyn, more=[inputs(3, 2)])
