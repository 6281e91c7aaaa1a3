#!/usr/bin/env python3
"""deepseek's Python front on the workloads of torch_bench.py that measure Python-level
cost: per-op overhead (``py_add_8x8``) and Python-driven training steps of the
TextGenerator (``textgen_step``: Embedding 10000x512 -> LSTM 512 -> Linear, batch 32,
seq 64, Adam; ``charlm_step``: the same with vocabulary 65, hidden 256). Prints JSON lines
``{"name": ..., "ms"|"us": ...}`` like torch_bench.py, with the same timing method.

Usage (after ``pip install .``)::

    python3 bench/deepseek_py_bench.py [--threads 2] [--only NAME,...] [--repeat N]

    # Python front vs PyTorch:
    python3 bench/compare.py --only py_add_8x8,charlm_step \\
        --deepseek-cmd "python3 bench/deepseek_py_bench.py --threads 2"
    # Python-driven vs Rust-driven step: compare this script's charlm_step/textgen_step
    # with `cargo run --release -p deepseek-bench -- --only charlm_step`.
"""

import argparse
import json
import statistics
import sys
import time

import deepseek as ds
import deepseek.nn as nn
import deepseek.nn.functional as F

MIN_SAMPLE_S = 0.05


class TextModel(nn.Module):
    """Embedding -> single-layer LSTM (batch_first) -> Linear to the vocabulary."""

    def __init__(self, vocab, hidden):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens):
        return self.head(self.lstm(self.emb(tokens))[0])


def lm_step(vocab, hidden, batch=32, seq=64):
    tokens = ds.randint(0, vocab, (batch, seq + 1))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    model = TextModel(vocab, hidden)
    opt = ds.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        logits = model(inputs)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).backward()
        opt.step()

    return {"fn": step, "inner": 1}


def py_add_8x8():
    a, b = ds.randn(8, 8), ds.randn(8, 8)
    return {"fn": lambda: a + b, "no_grad": True, "unit": "us"}


WORKLOADS = {
    "py_add_8x8": py_add_8x8,
    "charlm_step": lambda: lm_step(65, 256),
    "textgen_step": lambda: lm_step(10000, 512),
}


def measure(w, repeat):
    """Median seconds per call over ``repeat`` samples (torch_bench.py's method)."""
    fn, inner = w["fn"], w.get("inner")
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < 0.2:
        fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    if inner is None:
        inner = max(1, int(MIN_SAMPLE_S / max(per_call, 1e-9)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated workload names (default: all)")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    names = list(WORKLOADS)
    if args.only:
        asked = [n.strip() for n in args.only.split(",") if n.strip()]
        # Workloads of the other benchmarks that this script does not cover are skipped.
        names = [n for n in asked if n in WORKLOADS]
    ds.set_num_threads(args.threads)
    for name in names:
        ds.manual_seed(0)
        w = WORKLOADS[name]()
        if w.get("no_grad"):
            with ds.no_grad():
                sec = measure(w, max(1, args.repeat))
        else:
            sec = measure(w, max(1, args.repeat))
        rec = {"name": name}
        if w.get("unit") == "us":
            rec["us"] = round(sec * 1e6, 4)
        else:
            rec["ms"] = round(sec * 1e3, 4)
        print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
