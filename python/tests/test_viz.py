"""deepseek.viz: the traced graph's content (ops, shapes, dtypes, modules, edges), gradient
norms against the real ``.grad``, the vanishing/exploding flags, attention heat maps against
``need_weights=True``, histograms, the written page, and bad input. The page in a browser is
checked by scripts/test_viz.sh (headless Chromium)."""

import json
import math
import os

import numpy as np
import pytest

import deepseek as torch
import deepseek.nn as nn
import deepseek.nn.functional as F
import deepseek.viz as viz


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * 2.0


def norm(t):
    return float(np.linalg.norm(t.detach().numpy().astype(np.float64).ravel()))


def embedded(html):
    tag = 'id="viz-data">'
    start = html.index(tag) + len(tag)
    return json.loads(html[start:html.index("</script>", start)])


def test_ops_shapes_dtypes_modules_and_edges():
    torch.manual_seed(0)
    m = MLP()
    g = viz.trace(m, torch.randn(5, 4))
    ops = [(n["op"], n["module"]) for n in g.nodes]
    assert ops == [("input", None), ("linear", "fc1"), ("relu", "act"), ("linear", "fc2"),
                   ("mul", None)]
    inp, fc1, relu, fc2, mul = g.nodes
    assert inp["outputs"][0]["shape"] == [5, 4] and inp["outputs"][0]["dtype"] == "float32"
    assert [(i["shape"], i["from"], i.get("name")) for i in fc1["inputs"]] == [
        ([5, 4], 0, None), ([8, 4], None, "fc1.weight"), ([8], None, "fc1.bias")]
    assert fc1["outputs"][0]["shape"] == [5, 8]
    assert relu["inputs"][0]["from"] == fc1["id"]
    assert fc2["inputs"][0]["from"] == relu["id"] and fc2["outputs"][0]["shape"] == [5, 3]
    assert mul["inputs"][0]["from"] == fc2["id"]
    assert [(d["name"], d["type"], d["parent"]) for d in g.modules] == [
        ("fc1", "Linear", None), ("act", "ReLU", None), ("fc2", "Linear", None)]
    assert [p["name"] for p in g.params] == [n for n, _ in m.named_parameters()]
    assert g.to_dict()["outputs"] == [mul["id"]]
    assert not g.to_dict()["backward"] and all(p["grad_norm"] is None for p in g.params)


def test_nested_modules_and_dtypes():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Sequential(nn.Linear(3, 3).double(), nn.Tanh()), nn.Linear(3, 2).double())
    g = viz.trace(m, torch.randn(2, 3, dtype=torch.float64))
    assert [(d["name"], d["parent"]) for d in g.modules] == [
        ("0", None), ("0.0", "0"), ("0.1", "0"), ("1", None)]
    assert [n["module"] for n in g.nodes[1:]] == ["0.0", "0.1", "1"]
    assert all(o["dtype"] == "float64" for n in g.nodes for o in n["outputs"])


def test_grad_norms_equal_the_real_grads():
    torch.manual_seed(0)
    m = MLP()
    x = torch.randn(5, 4)
    y = torch.randn(5, 3)
    loss_fn = lambda out: F.mse_loss(out, y)  # noqa: E731
    g = viz.trace(m, x, loss_fn=loss_fn)
    assert g.to_dict()["backward"]
    # The model's .grad are as before (None).
    assert all(p.grad is None for p in m.parameters())
    # The same step by hand.
    h1 = m.fc1(x)
    h1.retain_grad()
    h2 = m.act(h1)
    h2.retain_grad()
    out = m.fc2(h2) * 2.0
    out.retain_grad()
    loss_fn(out).backward()
    want = {"fc1": norm(h1.grad), "act": norm(h2.grad)}
    for n in g.nodes[1:3]:
        assert n["outputs"][0]["grad_norm"] == pytest.approx(want[n["module"]], rel=1e-6)
    assert g.nodes[-1]["outputs"][0]["grad_norm"] == pytest.approx(norm(out.grad), rel=1e-6)
    for p, (name, param) in zip(g.params, m.named_parameters()):
        assert p["name"] == name
        assert p["grad_norm"] == pytest.approx(norm(param.grad), rel=1e-6)
    # Existing gradients survive the trace.
    before = [p.grad.numpy().copy() for p in m.parameters()]
    viz.trace(m, x, loss_fn=loss_fn)
    for b, p in zip(before, m.parameters()):
        np.testing.assert_array_equal(b, p.grad.numpy())


def test_vanishing_and_exploding_flags():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.big = nn.Linear(4, 4)
            self.tiny = nn.Linear(4, 4)

        def forward(self, x):
            return self.big(x) * 1e4 + self.tiny(x) * 1e-9

    m = Net()
    g = viz.trace(m, torch.randn(3, 4), loss_fn=lambda o: o.sum(), vanishing=1e-5,
                  exploding=1e3)
    seen = set()
    for n in g.nodes:
        for o in n["outputs"]:
            v = o["grad_norm"]
            if v is None:
                assert o["flag"] is None
                continue
            want = "exploding" if v > 1e3 else "vanishing" if v < 1e-5 else None
            assert o["flag"] == want, (n, o)
            seen.add((n["module"], o["flag"]))
    assert ("big", "exploding") in seen and ("tiny", "vanishing") in seen
    flags = {p["name"]: p["flag"] for p in g.params}
    assert flags["big.weight"] == "exploding" and flags["tiny.weight"] == "vanishing"


@pytest.mark.parametrize("batch_first", [False, True])
def test_attention_heads_equal_need_weights(batch_first):
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=batch_first)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    m = Net()
    x = torch.randn(3, 5, 8)
    g = viz.trace(m, x, attention_sample=1)
    (a,) = g.attention
    assert a["module"] == "attn" and a["type"] == "MultiheadAttention" and a["batch"] == 1
    _, w = m.attn(x, x, x, need_weights=True, average_attn_weights=False)
    w = w.detach().numpy()
    assert w.shape == (5 if not batch_first else 3, 2) + w.shape[2:]
    np.testing.assert_allclose(np.array(a["heads"]), w[1], rtol=0, atol=0)
    # Only the model's own call is in the graph (the weights call is not recorded).
    assert [n["op"] for n in g.nodes].count("mha") == 1


def test_transformer_layer_attention_and_sdpa():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 4, 16, batch_first=True)
    layer.eval()
    x = torch.randn(2, 6, 8)
    g = viz.trace(layer, x)
    (a,) = g.attention
    assert a["module"] == "self_attn" and len(a["heads"]) == 4
    _, w = layer.self_attn(x, x, x, need_weights=True, average_attn_weights=False)
    np.testing.assert_allclose(np.array(a["heads"]), w.detach().numpy()[0], atol=0)

    class Sdpa(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    q, k, v = (torch.randn(2, 3, 5, 4) for _ in range(3))
    g = viz.trace(Sdpa(), (q, k, v))
    (a,) = g.attention
    s = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(4))
    s = s.masked_fill(torch.ones(5, 5).triu(1).bool(), float("-inf"))
    np.testing.assert_allclose(np.array(a["heads"]), s.softmax(-1).numpy()[0], atol=1e-6)
    assert g.nodes[-1]["op"] == "scaled_dot_product_attention"
    assert [i["from"] for i in g.nodes[-1]["inputs"]] == [0, 1, 2]


def test_histograms():
    torch.manual_seed(0)
    m = MLP()
    g = viz.trace(m, torch.randn(50, 4), hist_bins=10)
    h1 = m.fc1(torch.randn(1, 4))  # noqa: F841  (the trace does not depend on later calls)
    for n in g.nodes:
        h = n["hist"]
        assert h is not None and len(h["counts"]) == 10
        numel = int(np.prod(n["outputs"][0]["shape"]))
        assert sum(h["counts"]) == numel
    relu = g.find(op="relu")[0]
    assert relu["hist"]["min"] == 0.0
    assert viz.trace(m, torch.randn(2, 4), histograms=False).nodes[1]["hist"] is None


def test_page_is_written_with_the_data(tmp_path):
    torch.manual_seed(0)
    m = MLP()
    path = tmp_path / "mlp.html"
    assert viz.render(m, torch.randn(2, 4), path, loss_fn=lambda o: o.sum()) == path
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "dagre" in html
    data = embedded(html)
    assert data["kind"] == "model" and [n["op"] for n in data["nodes"]][1:] == [
        "linear", "relu", "linear", "mul"]
    g = viz.trace(m, torch.randn(2, 4))
    assert embedded(g.html("t")) == json.loads(g.to_json())


def test_model_that_raises_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2))

        def forward(self, x):
            return self.inner(x)

    add = torch.Tensor.__add__
    with pytest.raises(viz.VizError, match=r"raised .* in inner > inner\.1"):
        viz.trace(Bad(), torch.randn(2, 4))
    # Everything patched for the trace is restored.
    assert torch.Tensor.__add__ is add
    assert F.linear(torch.ones(1, 4), torch.ones(2, 4)).shape == (1, 2)
    with pytest.raises(viz.VizError, match="no tensor"):
        viz.trace(nn.Identity(), (5,))
    with pytest.raises(TypeError, match="nn.Module"):
        viz.trace(lambda x: x, torch.ones(1))


def test_bad_paths(tmp_path):
    m = MLP()
    with pytest.raises(OSError, match="does not exist"):
        viz.render(m, torch.randn(2, 4), tmp_path / "missing" / "p.html")
    with pytest.raises(OSError, match="directory"):
        viz.render(m, torch.randn(2, 4), tmp_path)
    g = viz.trace(m, torch.randn(2, 4))
    with pytest.raises(OSError, match="does not exist"):
        g.save(tmp_path / "missing" / "p.html")


def test_render_run(tmp_path):
    lines = [{"step": s, "epoch": 0, "loss": 3.0 - s * 0.1, "val_loss": None, "lr": 0.01,
              "time": s * 0.1, "throughput": 100.0, "throughput_unit": "tokens/s",
              "grad_norm": 1.0 / s} for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    p = viz.render_run(tmp_path)
    assert p == os.path.join(str(tmp_path), "viz.html")
    data = embedded(open(p).read())
    assert data["steps"] == [1, 2, 3, 4, 5]
    assert data["grad_norm"] == [l["grad_norm"] for l in lines]
    with pytest.raises(OSError, match="no such run directory"):
        viz.render_run(tmp_path / "nope")
    os.remove(tmp_path / "metrics.jsonl")
    with pytest.raises(OSError, match="has no metrics.jsonl"):
        viz.render_run(tmp_path)
