"""The main job's recipe in PyTorch, for a side-by-side comparison with `deepseek train`.

Same data (data/shakespeare train/val), same batching (windows of `--seq` at a random offset
per epoch, shuffled, batches of `--batch`), same model (Embedding -> LSTM -> Linear, embedding
width = hidden size), Adam, gradient clipping, and optionally the same cosine schedule
(lr -> lr/30 over `--decay-steps`). Prints the validation loss over the whole validation text
every `--eval-every` steps with the elapsed time, so the curve can be set beside deepseek's
`runs/<name>/metrics.jsonl`.

    python3 bench/torch_mainjob.py --steps 1800 --schedule cosine --lr 3e-3

PyTorch is only needed to run this script; deepseek never imports it.
"""

import argparse
import math
import pathlib
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=1800)
    p.add_argument("--minutes", type=float, default=4.5)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--decay-steps", type=int, default=None)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--eval-every", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    train = (ROOT / "data/shakespeare/train.txt").read_text()
    val = (ROOT / "data/shakespeare/val.txt").read_text()
    chars = sorted(set(train + val))
    idx = {c: i for i, c in enumerate(chars)}
    tr = torch.tensor([idx[c] for c in train], dtype=torch.long)
    va = torch.tensor([idx[c] for c in val], dtype=torch.long)
    V, H, T, B = len(chars), a.hidden, a.seq, a.batch

    class TextGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, H)
            self.lstm = nn.LSTM(H, H, batch_first=True)
            self.fc = nn.Linear(H, V)

        def forward(self, x):
            out, _ = self.lstm(self.embedding(x))
            return self.fc(out)

    model = TextGenerator()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    decay = a.decay_steps or a.steps
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, decay, eta_min=a.lr / 30)
        if a.schedule == "cosine"
        else None
    )

    nw_val = (len(va) - 1) // T
    vx = va[: nw_val * T].view(nw_val, T)
    vy = va[1 : nw_val * T + 1].view(nw_val, T)

    def evaluate():
        model.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, nw_val, 128):
                lo = model(vx[i : i + 128])
                tot += F.cross_entropy(lo.reshape(-1, V), vy[i : i + 128].reshape(-1), reduction="sum").item()
                n += vy[i : i + 128].numel()
        model.train()
        return tot / n

    windows = (len(tr) - T) // T
    per_epoch = windows // B
    g = torch.Generator().manual_seed(a.seed)
    step, t0 = 0, time.perf_counter()
    done = False
    while not done:
        off = int(torch.randint(T, (1,), generator=g))
        order = torch.randperm(windows, generator=g)
        for b in range(per_epoch):
            starts = off + order[b * B : (b + 1) * B] * T
            ix = starts[:, None] + torch.arange(T)[None, :]
            x, y = tr[ix], tr[ix + 1]
            loss = F.cross_entropy(model(x).reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            if a.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            el = time.perf_counter() - t0
            last = step >= a.steps or el >= a.minutes * 60
            if step % a.eval_every == 0 or last:
                v = evaluate()
                print(
                    f"step {step} train {loss.item():.4f} val {v:.4f} "
                    f"elapsed {time.perf_counter() - t0:.1f}s ({el / step * 1000:.1f} ms/step)",
                    flush=True,
                )
            if last:
                done = True
                break


if __name__ == "__main__":
    main()
