#!/usr/bin/env python3
"""Side-by-side transformer workloads, PyTorch (+ `transformers`) and deepseek in one run,
same thread count, alternating rounds, best of each side:

- minilm_embed: all-MiniLM-L6-v2 sentence embeddings of 256 sentences of ~20 tokens
  (tokenised once; forward + mean pooling), batches of 64.
- sparse_attn: SparseAttention (T, w, 8 heads, d 64) forward + backward against dense
  attention with the same mask (deepseek's own dense path), with peak memory when available.

    python3 bench/transformers_bench.py --threads 2 --rounds 2
Needs torch and transformers (pip) and the deepseek package; the model comes from
scripts/fetch_models.sh.
"""

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def best(fn, reps):
    fn()
    t = float("inf")
    for _ in range(reps):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def sentences(n):
    words = ("the model reads every sentence and returns a vector that places similar "
             "meanings close together in a space of three hundred eighty four dimensions").split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(17)) for i in range(n)]


def minilm(threads, rounds):
    import torch
    import transformers as tf

    import deepseek as ds

    d = os.environ.get("DEEPSEEK_MINILM_DIR", str(ROOT / "target/models/all-MiniLM-L6-v2"))
    torch.set_num_threads(threads)
    ds.set_num_threads(threads)
    texts = sentences(256)
    ttok = tf.AutoTokenizer.from_pretrained(d)
    tmodel = tf.AutoModel.from_pretrained(d).eval()
    tb = [ttok(texts[i:i + 64], padding=True, return_tensors="pt") for i in range(0, 256, 64)]
    tok = ds.tokenizers.Tokenizer.from_file(f"{d}/tokenizer.json")
    tok.no_padding()
    db = [tok(texts[i:i + 64]) for i in range(0, 256, 64)]
    model = ds.models.from_pretrained(d)
    print(f"tokens per sentence: {db[0]['attention_mask'].sum().item() / 64:.1f}")

    def run_torch():
        with torch.no_grad():
            for b in tb:
                h = tmodel(**b)[0]
                m = b["attention_mask"].unsqueeze(-1).float()
                torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1)

    def run_ds():
        with ds.no_grad():
            for b in db:
                h = model(b["input_ids"], attention_mask=b["attention_mask"])[0]
                ds.models.mean_pooling(h, b["attention_mask"])

    bt = bd = float("inf")
    for _ in range(rounds):
        bt = min(bt, best(run_torch, 2))
        bd = min(bd, best(run_ds, 2))
    return bd, bt


def sparse(threads, rounds, t=4096, w=128):
    import deepseek as ds

    ds.set_num_threads(threads)
    sa = ds.nn.SparseAttention(512, 8, locality_window=w, global_tokens=(0,))
    x = ds.randn(1, t, 512).requires_grad_(True)

    def run(f):
        def go():
            f(x).sum().backward()
        return go

    bs = bd = float("inf")
    for _ in range(rounds):
        bs = min(bs, best(run(sa), 1))
        bd = min(bd, best(run(sa.forward_dense), 1))
    return bs, bd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="minilm_embed,sparse_attn")
    a = ap.parse_args()
    only = a.only.split(",")
    print("| workload | deepseek | reference | ratio |\n| --- | ---: | ---: | ---: |")
    if "minilm_embed" in only:
        d, t = minilm(a.threads, a.rounds)
        print(f"| minilm_embed (256 sentences) | {d * 1e3:.1f} ms | {t * 1e3:.1f} ms (PyTorch + "
              f"transformers) | {d / t:.2f}× |")
    if "sparse_attn" in only:
        s, d = sparse(a.threads, a.rounds)
        print(f"| sparse_attn T4096 w128 fwd+bwd | {s * 1e3:.1f} ms | {d * 1e3:.1f} ms (dense "
              f"masked, deepseek) | {s / d:.2f}× |")


if __name__ == "__main__":
    main()
