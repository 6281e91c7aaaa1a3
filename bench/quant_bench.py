"""INT8 dynamic-quantized Linear vs f32, deepseek vs PyTorch, same threads, side by side.

    python bench/quant_bench.py [--threads N] [--rounds R] [--batch 64] [--features 1024]

Prints a markdown table (best of R alternating rounds, each the median of many calls) with
the CPU's flags and the INT8 kernel deepseek picked, for bench/RESULTS.md.
"""

import argparse
import datetime
import platform
import time

import numpy as np
import torch

import deepseek
from deepseek import nn


def timeit(fn, min_time=0.3):
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.05:
        fn()
        n += 1
    reps = max(5, int(min_time / ((time.perf_counter() - t0) / n)))
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        model = next(line.split(":", 1)[1].strip() for line in txt.splitlines()
                     if line.startswith("model name"))
        flags = set(next(line for line in txt.splitlines() if line.startswith("flags"))
                    .split(":", 1)[1].split())
        keep = [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                            "amx_int8") if x in flags]
        return model, keep
    except (OSError, StopIteration):
        return platform.processor(), []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--features", type=int, default=1024)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    deepseek.set_num_threads(a.threads)
    torch.backends.quantized.engine = "x86"
    n, b = a.features, a.batch
    torch.manual_seed(0)
    tl = torch.nn.Linear(n, n)
    dl = nn.Linear(n, n)
    with deepseek.no_grad():
        dl.weight.copy_(deepseek.from_numpy(tl.weight.detach().numpy().copy()))
        dl.bias.copy_(deepseek.from_numpy(tl.bias.detach().numpy().copy()))
    tq = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(tl), {torch.nn.Linear},
                                                dtype=torch.qint8)
    dq = deepseek.quantization.quantize_dynamic(nn.Sequential(dl), {nn.Linear},
                                                dtype=deepseek.qint8)
    x = np.random.default_rng(0).standard_normal((b, n)).astype(np.float32)
    tx, dx = torch.from_numpy(x), deepseek.from_numpy(x)
    err = np.abs(dq(dx).numpy() - tq(tx).numpy()).max()
    cases = {
        "deepseek f32": lambda: dl(dx),
        "deepseek int8": lambda: dq(dx),
        "PyTorch f32": lambda: tl(tx),
        "PyTorch int8 (quantize_dynamic)": lambda: tq(tx),
    }
    best = {k: float("inf") for k in cases}
    with torch.no_grad(), deepseek.no_grad():
        for _ in range(a.rounds):
            for k, fn in cases.items():
                best[k] = min(best[k], timeit(fn))
    model, flags = cpu_flags()
    flops = 2.0 * b * n * n
    print(f"### {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC: int8 dynamic Linear "
          f"{n}x{n}, batch {b}, {a.threads} threads\n")
    print(f"CPU: {model}; flags: {' '.join(flags)}; deepseek kernel: "
          f"{deepseek.quantization.int8_isa()}; PyTorch {torch.__version__} engine x86 "
          f"(fbgemm). Max |deepseek int8 - PyTorch int8| = {err:.2e}.\n")
    print("| what | time | GOP/s |")
    print("| --- | ---: | ---: |")
    for k, t in best.items():
        print(f"| {k} | {t * 1e3:.4f} ms | {flops / t / 1e9:.1f} |")
    print()
    print(f"deepseek int8 vs deepseek f32: {best['deepseek f32'] / best['deepseek int8']:.2f}x "
          f"faster; vs PyTorch int8: "
          f"{best['PyTorch int8 (quantize_dynamic)'] / best['deepseek int8']:.2f}x")


if __name__ == "__main__":
    main()
