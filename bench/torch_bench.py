#!/usr/bin/env python3
"""PyTorch half of the deepseek-vs-PyTorch CPU benchmark.

Usage::

    python3 bench/torch_bench.py --threads 2 [--only NAME,...] [--repeat N]

Prints one JSON object per workload on stdout::

    {"name": "matmul_f32_512", "ms": 1.23, "gflops": 218.0}
    {"name": "py_add_8x8", "us": 2.1}

``ms`` is the median wall time of one call (``us`` for the per-op overhead
workload, in microseconds), ``gflops`` is given for the matmul workloads
(2 n^3 / time).  Each workload is warmed up first; each timed sample runs the
workload ``inner`` times (``inner`` chosen so that a sample lasts at least
~20 ms, and 1 for the training/backward workloads, whose gradients are reset
outside the timed region), and the median over ``--repeat`` samples is
reported.  Forward-only workloads run under ``torch.no_grad()``.
"""

import argparse
import json
import math
import random
import statistics
import sys
import time

import torch
import torch.nn.functional as F

MIN_SAMPLE_S = 0.02  # a timed sample of a fast workload loops for at least this long


def matmul(n):
    """Square float32 A @ B."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return {"fn": lambda: a @ b, "flops": 2.0 * n ** 3, "no_grad": True}


def add_16m():
    """a + b on two float32 tensors of 2^24 elements."""
    a, b = torch.randn(1 << 24), torch.randn(1 << 24)
    return {"fn": lambda: a + b, "no_grad": True}


def gelu_tanh_16m():
    """Tanh-approximated GELU on 2^24 elements."""
    x = torch.randn(1 << 24)
    return {"fn": lambda: F.gelu(x, approximate="tanh"), "no_grad": True}


def _gelu_chain(x):
    """GELU-tanh as eight elementwise ops (the same formula as the deepseek side)."""
    k = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + torch.tanh(k * (x + 0.044715 * torch.pow(x, 3))))


def gelu_chain_16m():
    """The eight-op GELU chain, eager, on 2^24 elements."""
    x = torch.randn(1 << 24)
    return {"fn": lambda: _gelu_chain(x), "no_grad": True}


def gelu_chain_compiled_16m():
    """The eight-op GELU chain under torch.compile (deepseek's row runs it lazily)."""
    x = torch.randn(1 << 24)
    f = torch.compile(_gelu_chain)
    return {"fn": lambda: f(x), "no_grad": True}


def softmax_4096x1024():
    """Softmax over the last dim of a [4096, 1024] tensor."""
    x = torch.randn(4096, 1024)
    return {"fn": lambda: F.softmax(x, -1), "no_grad": True}


def layer_norm_4096x1024():
    """LayerNorm over the last dim (1024) with weight and bias."""
    x, w, b = torch.randn(4096, 1024), torch.randn(1024), torch.randn(1024)
    return {"fn": lambda: F.layer_norm(x, (1024,), w, b), "no_grad": True}


def conv2d_fwd_bwd():
    """3x3 conv, 64->64 channels on [8, 64, 56, 56], padding 1: forward and
    backward of out.sum() w.r.t. input, weight and bias."""
    x = torch.randn(8, 64, 56, 56, requires_grad=True)
    w = (torch.randn(64, 64, 3, 3) * 0.05).requires_grad_()
    b = torch.randn(64, requires_grad=True)

    def step():
        F.conv2d(x, w, b, padding=1).sum().backward()

    def reset():
        x.grad = w.grad = b.grad = None

    return {"fn": step, "reset": reset}


def lstm_fwd_bwd():
    """nn.LSTM(512, 512, batch_first=True) on [32, 64, 512]: forward and
    backward of out.sum() w.r.t. the LSTM's parameters."""
    lstm = torch.nn.LSTM(512, 512, batch_first=True)
    x = torch.randn(32, 64, 512)

    def step():
        lstm(x)[0].sum().backward()

    return {"fn": step, "reset": lambda: lstm.zero_grad(set_to_none=True)}


class TextModel(torch.nn.Module):
    """Embedding -> single-layer LSTM (batch_first) -> Linear to the vocabulary."""

    def __init__(self, vocab, hidden):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, hidden)
        self.lstm = torch.nn.LSTM(hidden, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, tokens):
        return self.head(self.lstm(self.emb(tokens))[0])


def train_step(model, inputs, targets):
    """One Adam(lr=1e-3) training step: zero_grad + forward + cross_entropy +
    backward + step, all inside the timed region."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        logits = model(inputs)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)).backward()
        opt.step()

    return {"fn": step, "inner": 1}


def lm_step(vocab, hidden, batch=32, seq=64):
    """Language-model training step on random tokens."""
    tokens = torch.randint(0, vocab, (batch, seq + 1))
    return train_step(TextModel(vocab, hidden), tokens[:, :-1], tokens[:, 1:])


def mlp_step():
    """784-1024-1024-10 ReLU MLP, batch 256, cross_entropy, Adam."""
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 1024), torch.nn.ReLU(),
        torch.nn.Linear(1024, 1024), torch.nn.ReLU(),
        torch.nn.Linear(1024, 10))
    return train_step(model, torch.randn(256, 784), torch.randint(0, 10, (256,)))


def gpt_mini_step(compiled=False):
    """GPT-mini training step (same model as the deepseek side): 4 pre-norm causal layers,
    d 256, 4 heads, ff 1024, GELU, vocabulary 256, batch 16, sequence 128, AdamW."""
    vocab, d, heads, ff, layers, bsz, seq = 256, 256, 4, 1024, 4, 16, 128

    class Gpt(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = torch.nn.Embedding(vocab, d)
            self.pos = torch.nn.Embedding(seq, d)
            self.blocks = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(d, heads, ff, 0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
                for _ in range(layers))
            self.norm = torch.nn.LayerNorm(d)
            self.head = torch.nn.Linear(d, vocab)
            self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(seq))

        def forward(self, x):
            h = self.tok(x) + self.pos(torch.arange(seq))
            for b in self.blocks:
                h = b(h, src_mask=self.mask, is_causal=True)
            return self.head(self.norm(h))

    model = Gpt()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    tokens = torch.randint(0, vocab, (bsz, seq + 1))
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].reshape(-1)

    def train(x, y):
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y)
        loss.backward()
        return loss

    fwd_bwd = torch.compile(train) if compiled else train

    def step():
        opt.zero_grad()
        fwd_bwd(x, y)
        opt.step()

    return {"fn": step, "inner": 1}


def py_add_8x8():
    """Per-op overhead: a + b on 8x8 float32 tensors from a Python loop."""
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    return {"fn": lambda: a + b, "no_grad": True, "unit": "us"}


WORKLOADS = {
    "matmul_f32_128": lambda: matmul(128),
    "matmul_f32_256": lambda: matmul(256),
    "matmul_f32_384": lambda: matmul(384),
    "matmul_f32_512": lambda: matmul(512),
    "matmul_f32_1024": lambda: matmul(1024),
    "matmul_f32_2048": lambda: matmul(2048),
    "add_16M": add_16m,
    "gelu_tanh_16M": gelu_tanh_16m,
    "gelu_chain_16M": gelu_chain_16m,
    # deepseek: the chain in lazy mode (one fused kernel); PyTorch: torch.compile of it.
    "gelu_chain_lazy_16M": gelu_chain_compiled_16m,
    "softmax_4096x1024": softmax_4096x1024,
    "layer_norm_4096x1024": layer_norm_4096x1024,
    "conv2d_fwd_bwd": conv2d_fwd_bwd,
    "lstm_fwd_bwd": lstm_fwd_bwd,
    "textgen_step": lambda: lm_step(10000, 512),
    "charlm_step": lambda: lm_step(65, 256),
    # The same PyTorch step; on deepseek's side this row runs the `deepseek train` model
    # (TextGenerator, whose Embedding -> LSTM uses Lstm::forward_tokens).
    "charlm_model_step": lambda: lm_step(65, 256),
    "mlp_step": mlp_step,
    "gpt_mini_step": gpt_mini_step,
    # deepseek: the step in lazy mode; PyTorch: forward+backward under torch.compile.
    "gpt_mini_step_lazy": lambda: gpt_mini_step(compiled=True),
    "py_add_8x8": py_add_8x8,
}


def measure(w, repeat):
    """Median seconds per call of workload ``w`` over ``repeat`` samples."""
    fn, reset = w["fn"], w.get("reset")
    inner = w.get("inner", 1 if reset else None)
    # Warm-up: at least two calls and ~0.2 s; also calibrates the inner loop.
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < 0.2:
        if reset:
            reset()
        fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    if inner is None:
        inner = max(1, int(MIN_SAMPLE_S / max(per_call, 1e-9)))
    samples = []
    for _ in range(repeat):
        if reset:
            reset()
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--only", help="comma-separated workload names (default: all)")
    ap.add_argument("--repeat", type=int, default=10, help="timed samples per workload (default 10)")
    args = ap.parse_args()
    names = list(WORKLOADS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in WORKLOADS]
        if unknown:
            ap.error(f"unknown workload(s) {unknown}; known: {', '.join(WORKLOADS)}")
    torch.set_num_threads(args.threads)
    for name in names:
        torch.manual_seed(0)
        random.seed(0)
        w = WORKLOADS[name]()
        with torch.no_grad() if w.get("no_grad") else torch.enable_grad():
            sec = measure(w, max(1, args.repeat))
        rec = {"name": name}
        if w.get("unit") == "us":
            rec["us"] = round(sec * 1e6, 4)
        else:
            rec["ms"] = round(sec * 1e3, 4)
        if "flops" in w:
            rec["gflops"] = round(w["flops"] / sec / 1e9, 2)
        print(json.dumps(rec), flush=True)
        del w
    return 0


if __name__ == "__main__":
    sys.exit(main())
