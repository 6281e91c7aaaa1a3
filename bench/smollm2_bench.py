#!/usr/bin/env python3
"""SmolLM2-135M-Instruct greedy decoding, deepseek vs PyTorch + transformers, side by side.

128 new tokens after a 32-token prompt, KV cache, greedy, same threads. deepseek runs the GGUF
file (`deepseek generate --model FILE`, which prints its decode tokens/s); the reference is
`transformers` loading the same GGUF file with its weights dequantised to float32 (the
issue's "f32 reference"). Prints decode tokens/s of both and the ratio.

    bash scripts/fetch_models.sh
    python3 -m venv --system-site-packages .venv && .venv/bin/pip install transformers gguf accelerate
    .venv/bin/python bench/smollm2_bench.py --threads 2 --rounds 3
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
GGUF = os.path.join(ROOT, "target", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
PROMPT = ("The history of the printing press begins in the fifteenth century, when a goldsmith "
          "in Mainz combined a screw press with movable metal type and an oil-based ink")
NEW = 128


def torch_tps(threads, rounds):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    d, f = os.path.split(GGUF)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    ids = tok(PROMPT, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :32]
    out = []
    for _ in range(rounds):
        with torch.no_grad():
            t0 = time.perf_counter()
            first = model.generate(ids, max_new_tokens=1, do_sample=False)
            t1 = time.perf_counter()
            g = model.generate(ids, max_new_tokens=NEW, min_new_tokens=NEW, do_sample=False)
            t2 = time.perf_counter()
        assert g.shape[1] == ids.shape[1] + NEW, g.shape
        prefill = t1 - t0
        out.append((NEW - 1) / ((t2 - t1) - prefill))
    return out, ids[0].tolist()


def deepseek_tps(threads, rounds, exe, prompt_ids):
    from transformers import AutoTokenizer  # only to give both the same 32-token prompt
    d, f = os.path.split(GGUF)
    text = AutoTokenizer.from_pretrained(d, gguf_file=f).decode(prompt_ids)
    out = []
    env = dict(os.environ, DEEPSEEK_NUM_THREADS=str(threads))
    for _ in range(rounds):
        # --stop-token -1 never matches: always NEW tokens.
        r = subprocess.run([exe, "generate", "--model", GGUF, "--prompt", text, "--length",
                            str(NEW), "--temperature", "0", "--stop-token=-1"],
                           capture_output=True, text=True, env=env, check=True)
        m = re.search(r"(\d+) prompt tokens, (\d+) new tokens.*then ([\d.]+) tokens/s", r.stderr)
        assert m and int(m.group(1)) == len(prompt_ids) and int(m.group(2)) == NEW, r.stderr
        out.append(float(m.group(3)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--exe", default=os.path.join(ROOT, "target", "release", "deepseek"))
    a = ap.parse_args()
    t, ids = torch_tps(a.threads, a.rounds)
    d = deepseek_tps(a.threads, a.rounds, a.exe, ids)
    tm, dm = statistics.median(t), statistics.median(d)
    print(f"SmolLM2-135M greedy decode, {NEW} tokens after {len(ids)}, {a.threads} threads")
    print(f"  PyTorch + transformers (f32): {tm:.1f} tokens/s  {['%.1f' % x for x in t]}")
    print(f"  deepseek (GGUF):              {dm:.1f} tokens/s  {['%.1f' % x for x in d]}")
    print(f"  ratio deepseek/PyTorch: {dm / tm:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    sys.exit(main())
