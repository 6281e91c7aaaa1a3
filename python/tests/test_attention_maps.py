"""Attention maps: MultiheadAttention's per-head weights and nn.capture_attention against
PyTorch, and the pretrained models' output_attentions against `transformers` (references
stored by tools/gen_transformer_refs.py)."""

import os
from pathlib import Path

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn as nn

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "crates" / "deepseek" / "tests" / "data" / "transformers"


def t2d(t):
    return ds.tensor(t.detach().numpy())


def diff(a, b):
    a = a.detach().numpy() if isinstance(a, ds.Tensor) else a.detach().numpy()
    b = b.detach().numpy()
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def copy_weights(dst, src):
    sd = {k: t2d(v) for k, v in src.state_dict().items()}
    dst.load_state_dict(sd)


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_per_head_weights_match_pytorch(batch_first):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    dm = nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    copy_weights(dm, tm)
    q = torch.randn(2, 5, 16) if batch_first else torch.randn(5, 2, 16)
    kv = torch.randn(2, 7, 16) if batch_first else torch.randn(7, 2, 16)
    kpm = torch.zeros(2, 7, dtype=torch.bool)
    kpm[1, 5:] = True
    am = torch.randn(5, 7)
    for kw in [{}, {"key_padding_mask": kpm}, {"attn_mask": am, "key_padding_mask": kpm}]:
        for avg in [False, True]:
            to, tw = tm(q, kv, kv, need_weights=True, average_attn_weights=avg, **kw)
            dkw = {k: t2d(v) for k, v in kw.items()}
            do, dw = dm(t2d(q), t2d(kv), t2d(kv), need_weights=True,
                        average_attn_weights=avg, **dkw)
            assert diff(do, to) < 1e-5
            assert tuple(dw.shape) == ((2, 4, 5, 7) if not avg else (2, 5, 7))
            assert diff(dw, tw) < 1e-5
    # Unbatched: [H, L, S].
    _, tw = tm(q[0] if batch_first else q[:, 0], kv[0] if batch_first else kv[:, 0],
               kv[0] if batch_first else kv[:, 0], average_attn_weights=False)
    _, dw = dm(t2d(q[0] if batch_first else q[:, 0]), t2d(kv[0] if batch_first else kv[:, 0]),
               t2d(kv[0] if batch_first else kv[:, 0]), average_attn_weights=False)
    assert diff(dw, tw) < 1e-5


def _encoder_pair(norm_first, dropout=0.0):
    torch.manual_seed(1)
    layer = torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=dropout, batch_first=True,
                                             norm_first=norm_first)
    tenc = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    dlayer = nn.TransformerEncoderLayer(16, 4, 32, dropout=dropout, batch_first=True,
                                        norm_first=norm_first)
    denc = nn.TransformerEncoder(dlayer, 2).eval()
    copy_weights(denc, tenc)
    return tenc, denc


@pytest.mark.parametrize("norm_first", [False, True])
def test_capture_attention_on_transformer_encoder_matches_pytorch(norm_first):
    tenc, denc = _encoder_pair(norm_first)
    x = torch.randn(2, 6, 16)
    kpm = torch.zeros(2, 6, dtype=torch.bool)
    kpm[0, 4:] = True
    with ds.no_grad():
        plain = denc(t2d(x), src_key_padding_mask=t2d(kpm))
        with nn.capture_attention(denc) as maps:
            y = denc(t2d(x), src_key_padding_mask=t2d(kpm))
    assert np.array_equal(y.numpy(), plain.numpy()), "capture changed the output"
    assert sorted(maps) == ["layers.0.self_attn", "layers.1.self_attn"]
    # PyTorch's per-head weights of each layer on that layer's input.
    h = x
    with torch.no_grad():
        for i, layer in enumerate(tenc.layers):
            a_in = layer.norm1(h) if norm_first else h
            _, tw = layer.self_attn(a_in, a_in, a_in, key_padding_mask=kpm,
                                    need_weights=True, average_attn_weights=False)
            assert maps[f"layers.{i}.self_attn"].shape == (2, 4, 6, 6)
            assert diff(maps[f"layers.{i}.self_attn"], tw) < 1e-5
            h = layer(h, src_key_padding_mask=kpm)
    assert diff(y, h) < 1e-5
    # Outside the context nothing is recorded any more.
    with ds.no_grad():
        denc(t2d(x))
    assert sorted(maps) == ["layers.0.self_attn", "layers.1.self_attn"]
    assert not ds._C._is_recording_attention()


def test_capture_attention_keeps_training_outputs_and_gradients():
    _, denc = _encoder_pair(False, dropout=0.2)
    denc.train()
    x = ds.randn(2, 5, 16)
    ds.manual_seed(7)
    y0 = denc(x)
    y0.sum().backward()
    g0 = denc.layers[0].linear1.weight.grad.clone()
    denc.zero_grad()
    ds.manual_seed(7)
    with nn.capture_attention(denc) as maps:
        y1 = denc(x)
    y1.sum().backward()
    assert np.array_equal(y0.detach().numpy(), y1.detach().numpy())
    assert np.array_equal(g0.numpy(), denc.layers[0].linear1.weight.grad.numpy())
    w = maps["layers.1.self_attn"]
    assert not w.requires_grad
    assert np.allclose(w.sum(-1).numpy(), 1.0, atol=1e-5)  # before dropout


def test_capture_attention_sparse_gqa_and_unbatched():
    ds.manual_seed(2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.sparse = nn.SparseAttention(16, 2, locality_window=3, global_tokens=[0],
                                             causal=True)
            self.gqa = nn.GroupedQueryAttention(16, 4, 2)
            self.mha = nn.MultiheadAttention(16, 4)

        def forward(self, x):
            y = self.gqa(self.sparse(x))
            return self.mha(y[0], y[0], y[0], need_weights=False)[0]

    net = Net()
    x = ds.randn(2, 9, 16)
    plain = net(x)
    with nn.capture_attention(net) as maps:
        out = net(x)
    assert np.array_equal(out.detach().numpy(), plain.detach().numpy())
    assert sorted(maps) == ["gqa", "mha", "sparse"]
    w = maps["sparse"]
    assert w.shape == (2, 2, 9, 9)
    assert np.array_equal(w.numpy(), net.sparse.attention_weights(x).detach().numpy())
    outside = net.sparse.dense_mask(9).logical_not().numpy()
    assert np.abs(w.numpy()[..., outside]).max() == 0.0
    assert maps["gqa"].shape == (2, 4, 9, 9)
    assert np.triu(maps["gqa"].numpy()[0, 0], 1).max() == 0.0  # causal
    assert maps["mha"].shape == (1, 4, 9, 9)  # unbatched input: B = 1
    # The dense weights reproduce the sparse layer's output: o = proj(w @ v).
    q, k, v = net.sparse._project(x)
    o = net.sparse._out(w.matmul(v))
    assert diff(o, net.sparse(x)) < 1e-5


def test_capture_attention_errors_and_cleanup():
    with pytest.raises(TypeError):
        nn.capture_attention(object())

    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)

        def forward(self, x):
            self.attn(x, x, x)
            raise ValueError("boom")

    m = Boom()
    with pytest.raises(ValueError):
        with nn.capture_attention(m) as maps:
            m(ds.randn(3, 1, 8))
    assert "attn" in maps
    assert not ds._C._is_recording_attention()
    assert not m.attn._forward_hooks


def test_pretrained_output_attentions_match_transformers():
    for name in ["tiny-bert", "tiny-gpt2", "tiny-llama"]:
        r = ds.load_file(str(DATA / name / "reference.safetensors"))
        want = ds.load_file(str(DATA / name / "attentions.safetensors"))
        m = ds.models.from_pretrained(DATA / name)
        plain = m(r["input_ids"], attention_mask=r["attention_mask"])
        out = m(r["input_ids"], attention_mask=r["attention_mask"], output_attentions=True)
        assert len(out) == len(plain) + 1
        for a, b in zip(out, plain):
            assert np.array_equal(a.numpy(), b.numpy())
        att = out[-1]
        assert isinstance(att, tuple) and len(att) == len(want)
        for i, a in enumerate(att):
            assert diff(a, want[f"layer.{i}"]) < 1e-5, (name, i)


def test_minilm_output_attentions_match_transformers():
    d = Path(os.environ.get("DEEPSEEK_MINILM_DIR",
                            ROOT / "target" / "models" / "all-MiniLM-L6-v2"))
    if not (d / "model.safetensors").is_file():
        if os.environ.get("DEEPSEEK_REQUIRE_MODELS"):
            pytest.fail(f"all-MiniLM-L6-v2 not found in {d} (run scripts/fetch_models.sh)")
        pytest.skip(f"all-MiniLM-L6-v2 not found in {d} (run scripts/fetch_models.sh)")
    r = ds.load_file(str(DATA / "minilm_reference.safetensors"))
    want = ds.load_file(str(DATA / "minilm_attentions.safetensors"))
    model = ds.models.from_pretrained(d)
    with ds.no_grad():
        att = model(r["input_ids"], attention_mask=r["attention_mask"],
                    output_attentions=True)[-1]
    assert len(att) == 6
    for i, a in enumerate(att):
        assert a.shape == (4, 12) + tuple(r["input_ids"].shape[1:]) * 2
        assert diff(a, want[f"layer.{i}"]) < 1e-5, i


def test_viz_attention_page_draws_each_head(tmp_path):
    import json
    import re

    import deepseek.viz as viz

    _, denc = _encoder_pair(False)
    x = ds.randn(2, 5, 16)
    with nn.capture_attention(denc) as maps:
        with ds.no_grad():
            denc(x)
    path = viz.attention(denc, x, tmp_path / "attn.html", sample=1, tokens=list("abcde"))
    html = Path(path).read_text()
    data = json.loads(re.search(r'id="viz-data">(.*?)</script>', html, re.S).group(1))
    assert data["kind"] == "attention" and data["tokens"] == list("abcde")
    assert [a["module"] for a in data["attention"]] == sorted(maps)
    for a in data["attention"]:
        assert a["type"] == "MultiheadAttention" and a["batch"] == 1
        want = maps[a["module"]].numpy()[1]
        assert np.abs(np.array(a["heads"]) - want).max() < 1e-6
    with pytest.raises(OSError):
        viz.attention(denc, x, tmp_path / "missing" / "a.html")
    with pytest.raises(IndexError):
        viz.attention(denc, x, tmp_path / "b.html", sample=2)
