"""The cost of DP-SGD in deepseek: one training step with per-sample gradients, per-sample
clipping and noise (GradSampleModule + DPOptimizer) against the plain step of the same model,
side by side in one process (issue 16, part 2).

Models: an MLP on 784-dim inputs, and a small character-level LSTM language model
(``deepseek.privacy.DPLSTM``, the LSTM built from ``nn.Linear`` cells that per-sample
gradients need, as Opacus' ``DPLSTM``; its plain step is timed both with ``DPLSTM`` and with
the fused ``nn.LSTM``).

    PYTHONPATH=python python bench/dp_overhead.py [--threads 2] [--reps 20] [--quick]
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import deepseek  # noqa: E402
from deepseek import nn  # noqa: E402
from deepseek.nn import functional as F  # noqa: E402
from deepseek.privacy import DPLSTM, DPOptimizer, GradSampleModule  # noqa: E402


class CharLSTM(nn.Module):
    def __init__(self, vocab, emb, hidden, lstm_cls):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = lstm_cls(emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.out(h)


def time_steps(model, batch, loss_fn, dp, reps, warmup=3):
    """Median seconds of one step; ``dp``: None (plain), "hooks" or "ghost"."""
    if dp:
        model = GradSampleModule(model, grad_sample_mode=dp)
        opt = DPOptimizer(deepseek.optim.SGD(model.parameters(), lr=0.01), noise_multiplier=1.0,
                          max_grad_norm=1.0, expected_batch_size=batch[0].shape[0])
        opt.grad_sample_module = model
    else:
        opt = deepseek.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for i in range(warmup + reps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(batch[0]), batch[1]).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[warmup:])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="3 repetitions, smaller batches")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.quick:
        args.reps = 3
    deepseek.set_num_threads(args.threads)
    deepseek.manual_seed(0)
    rows = []

    b = 64 if args.quick else 256
    x, y = deepseek.randn(b, 784), deepseek.randint(0, 10, (b,))

    def mlp():
        deepseek.manual_seed(0)
        return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                             nn.Linear(256, 10))

    plain = time_steps(mlp(), (x, y), F.cross_entropy, None, args.reps)
    hooks = time_steps(mlp(), (x, y), F.cross_entropy, "hooks", args.reps)
    ghost = time_steps(mlp(), (x, y), F.cross_entropy, "ghost", args.reps)
    rows.append(dict(model=f"MLP 784-512-256-10, batch {b}", plain_ms=plain * 1e3,
                     hooks_ms=hooks * 1e3, ghost_ms=ghost * 1e3))

    b, t, vocab = (16, 32, 64) if args.quick else (64, 64, 96)
    xs = deepseek.randint(0, vocab, (b, t))
    ys = deepseek.randint(0, vocab, (b, t))

    def seq_loss(logits, target):
        return F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1))

    def lstm(cls):
        deepseek.manual_seed(0)
        return CharLSTM(vocab, 32, 128, cls)

    fused = time_steps(lstm(nn.LSTM), (xs, ys), seq_loss, None, args.reps)
    plain = time_steps(lstm(DPLSTM), (xs, ys), seq_loss, None, args.reps)
    hooks = time_steps(lstm(DPLSTM), (xs, ys), seq_loss, "hooks", args.reps)
    ghost = time_steps(lstm(DPLSTM), (xs, ys), seq_loss, "ghost", args.reps)
    rows.append(dict(model=f"char-LSTM (DPLSTM, emb 32, hidden 128, vocab {vocab}), "
                     f"batch {b} x {t}", plain_ms=plain * 1e3, hooks_ms=hooks * 1e3,
                     ghost_ms=ghost * 1e3, plain_fused_lstm_ms=fused * 1e3))

    print(f"threads {args.threads}, median of {args.reps} steps; DP = per-sample clipping + "
          "noise; 'hooks' materialises per-sample gradients, 'ghost' clips without them")
    print(f"{'model':66s} {'plain ms':>9s} {'DP hooks':>9s} {'DP ghost':>9s} {'ratios':>16s}")
    for r in rows:
        r["ratio_hooks"] = r["hooks_ms"] / r["plain_ms"]
        r["ratio_ghost"] = r["ghost_ms"] / r["plain_ms"]
        print(f"{r['model']:66s} {r['plain_ms']:9.1f} {r['hooks_ms']:9.1f} {r['ghost_ms']:9.1f} "
              f"{r['ratio_hooks']:6.2f}x {r['ratio_ghost']:6.2f}x")
        if "plain_fused_lstm_ms" in r:
            r["ratio_ghost_vs_fused"] = r["ghost_ms"] / r["plain_fused_lstm_ms"]
            print(f"{'  plain step with the fused nn.LSTM instead (ghost DP / fused)':66s} "
                  f"{r['plain_fused_lstm_ms']:9.1f} {'':9s} {'':9s} "
                  f"{r['ratio_ghost_vs_fused']:13.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
