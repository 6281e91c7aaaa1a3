#!/usr/bin/env python3
"""The tutorials' TextGenerator (Embedding -> LSTM -> Linear) trained on the bundled
Shakespeare text from Python, character level, then sampled.

    pip install .            # from the repository root
    python3 examples/python/textgen.py [--steps 200] [--hidden 128] [--seq 64] [--batch 32]

Everything below is ordinary PyTorch code with ``import deepseek as torch`` semantics.
"""

import argparse
import os
import time

import deepseek
import deepseek.nn as nn
import deepseek.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class TextGenerator(nn.Module):
    def __init__(self, vocab_size, hidden_dim):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_dim)
        self.lstm = nn.LSTM(hidden_dim, hidden_dim, batch_first=True)
        self.fc = nn.Linear(hidden_dim, vocab_size)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embedding(x), state)
        return self.fc(out), state


def load_text(limit=400_000):
    path = os.path.join(ROOT, "data", "shakespeare", "train.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return f.read()[:limit]
    return "To be, or not to be, that is the question. " * 2000


@deepseek.no_grad()
def sample(model, chars, stoi, prompt="ROMEO.", length=300, temperature=0.8):
    model.eval()
    ids = deepseek.tensor([[stoi[c] for c in prompt if c in stoi]])
    logits, state = model(ids)
    out = list(prompt)
    for _ in range(length):
        probs = F.softmax(logits[0, -1] / temperature, dim=-1)
        idx = deepseek.multinomial(probs, 1).item()
        out.append(chars[idx])
        logits, state = model(deepseek.tensor([[idx]]), state)
    model.train()
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    deepseek.manual_seed(args.seed)
    text = load_text()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = deepseek.tensor([stoi[c] for c in text])
    n = data.shape[0] - args.seq - 1

    model = TextGenerator(len(chars), args.hidden)
    opt = deepseek.optim.Adam(model.parameters(), lr=args.lr)
    sched = deepseek.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps, eta_min=1e-4)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        starts = deepseek.randint(0, n, (args.batch,))
        offs = deepseek.arange(args.seq + 1)
        windows = data[starts.unsqueeze(1) + offs.unsqueeze(0)]  # [batch, seq+1]
        x, y = windows[:, :-1], windows[:, 1:]
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == 1:
            dt = time.perf_counter() - t0
            print(f"step {step:5d}  loss {loss.item():.4f}  lr {sched.get_last_lr()[0]:.2e}  "
                  f"{dt / step * 1e3:.1f} ms/step")
    deepseek.save(model.state_dict(), "textgen.safetensors")
    print("saved textgen.safetensors")
    print(sample(model, chars, stoi))


if __name__ == "__main__":
    main()
