"""The deployment walk-through for the tutorials' TextGenerator (Embedding → LSTM → Linear,
character level, Shakespeare): train, quantize dynamically to int8
(``quantize_dynamic(model, {nn.LSTM, nn.Linear})``), compare validation loss in nats/char,
export the float model to ONNX and run it in ONNX Runtime.

    PYTHONPATH=python python3 examples/python/deploy_textgen.py [--steps 300] [--hidden 128]

The issue's target: int8 dynamic validation loss ≤ f32's + 0.02 nats/char.
"""

import argparse
import os
import sys
import time

import numpy as np

import deepseek
import deepseek.nn as nn
import deepseek.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from textgen import ROOT, TextGenerator  # noqa: E402


def read(name, limit):
    with open(os.path.join(ROOT, "data", "shakespeare", name), encoding="utf-8") as f:
        return f.read()[:limit]


class Logits(nn.Module):
    """The TextGenerator's logits only (what is exported and evaluated)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)[0]


def val_loss(fn, val, seq, batch):
    """Mean cross-entropy (nats/char) over consecutive windows of the validation text."""
    n = (len(val) - 1) // seq // batch * batch
    total, count = 0.0, 0
    for i in range(0, n, batch):
        idx = np.arange(i, i + batch)[:, None] * seq + np.arange(seq + 1)[None, :]
        w = val[idx]
        logits = fn(w[:, :-1])
        lp = logits - logits.max(-1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(-1, keepdims=True))
        total += -np.take_along_axis(lp, w[:, 1:, None], -1).sum()
        count += w[:, 1:].size
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--val-chars", type=int, default=40_000)
    ap.add_argument("--out", default="target/deploy")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    deepseek.manual_seed(0)
    text = read("train.txt", 400_000)
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    val = np.array([stoi[c] for c in read("val.txt", args.val_chars) if c in stoi], np.int64)
    data = deepseek.tensor([stoi[c] for c in text])
    n = data.shape[0] - args.seq - 1
    model = TextGenerator(len(chars), args.hidden)
    opt = deepseek.optim.Adam(model.parameters(), lr=2e-3)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        starts = deepseek.randint(0, n, (args.batch,))
        w = data[starts.unsqueeze(1) + deepseek.arange(args.seq + 1).unsqueeze(0)]
        logits, _ = model(w[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), w[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            print(f"step {step}: loss {loss.item():.4f} "
                  f"({(time.perf_counter() - t0) / step * 1e3:.0f} ms/step)")
    model.eval()
    f32 = Logits(model).eval()
    q = deepseek.quantization.quantize_dynamic(f32, {nn.LSTM, nn.Linear},
                                               dtype=deepseek.qint8)
    print(q)

    def run(m):
        def fn(x):
            with deepseek.no_grad():
                return m(deepseek.tensor(x)).numpy()
        return fn

    l32 = val_loss(run(f32), val, args.seq, args.batch)
    l8 = val_loss(run(q), val, args.seq, args.batch)
    path = f"{args.out}/textgen_f32.onnx"
    ex = deepseek.tensor(val[None, :args.seq])
    deepseek.onnx.export(f32, (ex,), path, input_names=["ids"], output_names=["logits"],
                         dynamic_axes={"ids": {0: "batch", 1: "seq"},
                                       "logits": {0: "batch", 1: "seq"}})
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    lo = val_loss(lambda x: sess.run(None, {"ids": x})[0], val, args.seq, args.batch)
    print(f"validation loss (nats/char): f32 {l32:.4f}, int8 dynamic {l8:.4f} "
          f"({l8 - l32:+.4f}; target <= +0.02), f32 in ONNX Runtime {lo:.4f} "
          f"(ONNX file {os.path.getsize(path) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
