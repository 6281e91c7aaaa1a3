#!/usr/bin/env python3
"""The cost of attention maps: all-MiniLM-L6-v2's plain forward (which must not be slower
than before attention capture existed) and the same forward with ``output_attentions=True``
and inside ``nn.capture_attention`` (TransformerEncoder), best of ``--reps``.

    PYTHONPATH=python python3 bench/attention_maps_bench.py --model target/models/all-MiniLM-L6-v2

Run it once against the build before the change (its ``python/`` on PYTHONPATH) and once
after, in alternation; the model comes from scripts/fetch_models.sh.
"""

import argparse
import time

import deepseek as ds
import deepseek.nn as nn


def best(fn, reps):
    fn()
    t = float("inf")
    for _ in range(reps):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="target/models/all-MiniLM-L6-v2")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    ds.set_num_threads(a.threads)
    model = ds.models.from_pretrained(a.model)
    ds.manual_seed(0)
    ids = ds.randint(1000, 20000, (64, 20))
    mask = ds.ones(64, 20, dtype=ds.int64)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(256, 8, 1024, batch_first=True,
                                                           dropout=0.0), 4).eval()
    x = ds.randn(16, 128, 256)
    with ds.no_grad():
        rows = [("minilm forward, 64 x 20 tokens", lambda: model(ids, attention_mask=mask)),
                ("encoder 4 x d256 x 8 heads, 16 x 128", lambda: enc(x))]
        for name, fn in rows:
            print(f"{name}: {best(fn, a.reps) * 1e3:.1f} ms")
        if hasattr(nn, "capture_attention"):
            t = best(lambda: model(ids, attention_mask=mask, output_attentions=True), a.reps)
            print(f"minilm forward, output_attentions=True: {t * 1e3:.1f} ms")

            def cap():
                with nn.capture_attention(enc):
                    enc(x)
            print(f"encoder inside capture_attention: {best(cap, a.reps) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
