"""ONNX export of nn.MultiheadAttention and nn.TransformerEncoderLayer / TransformerEncoder:
onnx.checker (full check) accepts the files and ONNX Runtime's outputs equal deepseek's within
1e-5, at two batch sizes and two sequence lengths through dynamic axes."""

import numpy as np
import pytest

import deepseek
from deepseek import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _export_and_run(model, args, names, dyn, feeds_list, path):
    deepseek.onnx.export(model, args, str(path), input_names=names,
                         output_names=["y"] if not isinstance(model, _MhaWeights) else
                         ["y", "w"], dynamic_axes=dyn)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for feeds in feeds_list:
        want = model(*[deepseek.tensor(feeds[n]) for n in names])
        want = want if isinstance(want, tuple) else (want,)
        got = sess.run(None, feeds)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b.detach().numpy(), atol=1e-5, rtol=1e-5)


class _MhaWeights(nn.Module):
    def __init__(self, batch_first, mask):
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4, batch_first=batch_first)
        self.mask = mask

    def forward(self, q, kv):
        return self.mha(q, kv, kv, attn_mask=self.mask)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mask", [None, "float", "bool"])
def test_mha_cross_attention_with_weights(tmp_path, batch_first, mask):
    deepseek.manual_seed(0)
    L, S = 5, 7
    m = None
    if mask == "float":
        m = deepseek.tensor(np.random.default_rng(0).standard_normal((L, S)).astype(np.float32))
    elif mask == "bool":
        a = np.zeros((L, S), bool)
        a[:, -2:] = True
        m = deepseek.tensor(a)
    model = _MhaWeights(batch_first, m).eval()
    with deepseek.no_grad():
        model.mha.in_proj_bias.uniform_(-0.1, 0.1)
        model.mha.out_proj.bias.uniform_(-0.1, 0.1)
    rng = np.random.default_rng(1)

    def feeds(n):
        shp = (lambda t: (n, t, 16)) if batch_first else (lambda t: (t, n, 16))
        return {"q": rng.standard_normal(shp(L)).astype(np.float32),
                "kv": rng.standard_normal(shp(S)).astype(np.float32)}

    b = 0 if batch_first else 1
    f2 = feeds(2)
    _export_and_run(model, (deepseek.tensor(f2["q"]), deepseek.tensor(f2["kv"])), ["q", "kv"],
                    {"q": {b: "batch"}, "kv": {b: "batch"}, "y": {b: "batch"},
                     "w": {0: "batch"}}, [f2, feeds(3)], tmp_path / "mha.onnx")


class _Encoder(nn.Module):
    def __init__(self, norm_first, activation, batch_first):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, dropout=0.1,
                                           activation=activation, batch_first=batch_first,
                                           norm_first=norm_first)
        self.enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))

    def forward(self, x, pad):
        return self.enc(x, src_key_padding_mask=pad)


@pytest.mark.parametrize("norm_first,activation,batch_first", [
    (False, "relu", True), (True, "gelu", False)])
def test_transformer_encoder(tmp_path, norm_first, activation, batch_first):
    deepseek.manual_seed(0)
    model = _Encoder(norm_first, activation, batch_first).eval()
    rng = np.random.default_rng(2)

    def feeds(n, t):
        x = rng.standard_normal((n, t, 16) if batch_first else (t, n, 16)).astype(np.float32)
        pad = np.zeros((n, t), bool)
        pad[0, -1] = True
        return {"x": x, "pad": pad}

    b, s = (0, 1) if batch_first else (1, 0)
    f = feeds(2, 6)
    _export_and_run(model, (deepseek.tensor(f["x"]), deepseek.tensor(f["pad"])), ["x", "pad"],
                    {"x": {b: "batch", s: "seq"}, "pad": {0: "batch", 1: "seq"},
                     "y": {b: "batch", s: "seq"}}, [f, feeds(3, 9)], tmp_path / "enc.onnx")


def test_unsupported_attention_arguments_are_errors(tmp_path):
    class Causal(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2)

        def forward(self, x):
            return self.mha(x, x, x, need_weights=False, is_causal=True)[0]

    with pytest.raises(deepseek.onnx.ExportError, match="is_causal"):
        deepseek.onnx.export(Causal().eval(), (deepseek.randn(3, 1, 8),),
                             str(tmp_path / "c.onnx"))
