"""Softmax, log-softmax and cross-entropy (forward) over rows of a few lengths: deepseek
against PyTorch in one run (best of interleaved rounds; ratio = deepseek / torch).

    PYTHONPATH=python python bench/softmax_rows_bench.py [--threads 2]
"""
import argparse
import time

import torch

import deepseek as ds
import deepseek.nn.functional as F


def best(f, reps=300):
    for _ in range(20):
        f()
    b = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t0)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    ds.set_num_threads(a.threads)
    print(f"threads={a.threads}; times in us, best of 5 interleaved rounds")
    print("| rows x n | op | deepseek | PyTorch | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for rows, n in [(64, 10), (1024, 10), (4096, 10), (256, 31), (1024, 65), (8192, 128)]:
        x = ds.randn(rows, n)
        y = ds.randint(0, n, (rows,))
        xt, yt = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())
        cases = [("softmax", lambda: x.softmax(-1), lambda: xt.softmax(-1)),
                 ("log_softmax", lambda: F.log_softmax(x, -1), lambda: torch.log_softmax(xt, -1)),
                 ("cross_entropy", lambda: F.cross_entropy(x, y),
                  lambda: torch.nn.functional.cross_entropy(xt, yt))]
        for name, f, g in cases:
            tf = tg = float("inf")
            for _ in range(5):
                tf, tg = min(tf, best(f)), min(tg, best(g))
            print(f"| {rows} x {n} | {name} | {tf * 1e6:.1f} | {tg * 1e6:.1f} | "
                  f"{tf / tg:.2f} |")


if __name__ == "__main__":
    main()
