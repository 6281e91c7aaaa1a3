"""Profiler overhead on the main job's training step (`deepseek train`, default model:
Embedding -> LSTM 256 -> Linear, batch 32, seq 128): runs of N steps without and with
`--profile`, alternated R times; compares the median step time over the profiled steps
(from metrics.jsonl's per-step wall times).

    python3 bench/profiler_overhead.py --steps 30 --rounds 3 [--bin target/release/deepseek]
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile


def step_times(out):
    lines = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    t = [l["time"] for l in lines if not l.get("is_final")]
    return [b - a for a, b in zip(t, t[1:])]


def run(binary, steps, profile, tmp, threads):
    out = os.path.join(tmp, "p" if profile else "n")
    cmd = [binary, "train", "--out", out, "--overwrite", "--steps", str(steps),
           "--eval-every", "100000", "--checkpoint-every", "100000", "--sample-length", "0",
           "--log-every", "100000", "--threads", str(threads), "--minutes", "30"]
    if profile:
        cmd += ["--profile", str(steps - 3)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    # Steps 2 .. steps-2 are profiled (1 skipped, 1 warm-up); compare the same steps.
    return step_times(out)[2:steps - 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/deepseek")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    off, on = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):
            off += run(a.bin, a.steps, False, tmp, a.threads)
            on += run(a.bin, a.steps, True, tmp, a.threads)
    mo, mn = statistics.median(off), statistics.median(on)
    print(f"main job step, median over {len(off)} steps: profiler off {mo * 1e3:.1f} ms, "
          f"on {mn * 1e3:.1f} ms, overhead {100 * (mn / mo - 1):+.1f}%")


if __name__ == "__main__":
    main()
