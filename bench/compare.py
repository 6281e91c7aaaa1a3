#!/usr/bin/env python3
"""Side-by-side CPU benchmark: deepseek vs PyTorch, as a markdown table.

Runs ``bench/torch_bench.py`` and the deepseek benchmark command; both print
JSON lines ``{"name": ..., "ms": ...}`` (optionally ``"gflops"``, or ``"us"``
instead of ``"ms"`` for per-op overhead workloads).  Prints a markdown
section with the date, machine and torch version, and a table

    workload | deepseek | PyTorch | ratio (deepseek/PyTorch time)

A workload reported by only one side shows "—" for the other.

Usage::

    python3 bench/compare.py [--threads 2] [--only NAME,...] [--repeat N]
        [--deepseek-cmd "CMD"] [--torch-cmd "CMD"]
        [--deepseek-json FILE] [--torch-json FILE]
        [--append-results bench/RESULTS.md] [--rounds N]

``--rounds N`` runs the two sides N times, alternating (PyTorch, deepseek, PyTorch, ...),
and keeps each side's fastest result per workload: on a shared machine whose load varies,
this compares the two under the most similar conditions.

``--only`` and ``--repeat`` are passed to torch_bench.py, and appended to the
deepseek command as ``--only``/``--repeat`` as well; the table is limited to
``--only`` in any case.  ``--deepseek-json``/``--torch-json`` read saved JSON
lines instead of running a side.
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
from importlib import metadata

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DASH = "—"


def parse_lines(text, source):
    """JSON-lines results -> {name: record}; other lines are skipped with a note."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict) or "name" not in rec:
            print(f"[compare] {source}: ignoring line {line[:120]!r}", file=sys.stderr)
            continue
        out[rec["name"]] = rec
    return out


def run_side(cmd, source):
    """Run a benchmark command through the shell; returns (results, error or None)."""
    print(f"[compare] running {source}: {cmd}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = parse_lines(proc.stdout, source)
    err = None
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        err = f"`{cmd}` exited with {proc.returncode}" + (": " + " / ".join(tail) if tail else "")
        print(f"[compare] {source}: {err}", file=sys.stderr)
    return results, err


def load_side(path, source):
    """Read saved JSON lines."""
    with open(path) as f:
        return parse_lines(f.read(), source), None


def seconds(rec):
    """Time per call in seconds, or None."""
    if rec is None:
        return None
    if rec.get("ms") is not None:
        return float(rec["ms"]) / 1e3
    if rec.get("us") is not None:
        return float(rec["us"]) / 1e6
    return None


def keep_best(best, got):
    """Merge results into `best`, keeping the faster record per workload."""
    for name, rec in got.items():
        old = best.get(name)
        if old is None or (seconds(rec) is not None and seconds(rec) < (seconds(old) or float("inf"))):
            best[name] = rec


def fmt_time(rec):
    """A result cell: time in its own unit, plus GFLOP/s when reported."""
    if rec is None or seconds(rec) is None:
        return DASH
    text = f"{rec['us']:.3g} µs" if rec.get("ms") is None else f"{float(rec['ms']):.4g} ms"
    if rec.get("gflops") is not None:
        text += f" ({float(rec['gflops']):.1f} GFLOP/s)"
    return text


def fmt_ratio(ds, pt):
    """deepseek time / PyTorch time, or a dash."""
    a, b = seconds(ds), seconds(pt)
    if a is None or not b:
        return DASH
    return f"{a / b:.2f}×"


def cpu_model():
    """The CPU's "Model name" from lscpu."""
    try:
        for line in subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def nproc():
    """What `nproc` prints (honours CPU affinity), falling back to os.cpu_count()."""
    try:
        return int(subprocess.run(["nproc"], stdout=subprocess.PIPE, text=True).stdout.strip())
    except (OSError, ValueError):
        return os.cpu_count()


def git_rev():
    """Short commit of the working tree, if any."""
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() or None
    except OSError:
        return None


def torch_version():
    """torch.__version__ as the benchmark's interpreter sees it (with its local
    tag, e.g. +cu132), else the installed distribution's version."""
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip()
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


def render(ds, pt, order, threads, ds_cmd, notes):
    """The markdown section."""
    rev = git_rev()
    lines = [
        f"## Benchmark {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"- machine: {cpu_model()}, nproc {nproc()}, threads {threads}",
        f"- PyTorch {torch_version()}; deepseek: `{ds_cmd}`" + (f" at {rev}" if rev else ""),
        "- ratio = deepseek time / PyTorch time (below 1 means deepseek is faster)",
    ]
    lines += [f"- note: {n}" for n in notes]
    lines += ["", "| workload | deepseek | PyTorch | ratio |", "| --- | ---: | ---: | ---: |"]
    for name in order:
        d, p = ds.get(name), pt.get(name)
        lines.append(f"| {name} | {fmt_time(d)} | {fmt_time(p)} | {fmt_ratio(d, p)} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--repeat", type=int, help="timed samples per workload, passed to both sides")
    ap.add_argument("--deepseek-cmd", help="default: cargo run --release -q -p deepseek-bench -- --threads N")
    ap.add_argument("--torch-cmd", help="default: python3 bench/torch_bench.py --threads N")
    ap.add_argument("--deepseek-json", help="read deepseek results from this JSON-lines file instead")
    ap.add_argument("--torch-json", help="read PyTorch results from this JSON-lines file instead")
    ap.add_argument("--append-results", metavar="FILE", help="append the markdown section to FILE")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two sides this many times and keep each one's best")
    args = ap.parse_args()

    extra = ""
    if args.only:
        extra += f" --only {shlex.quote(args.only)}"
    if args.repeat:
        extra += f" --repeat {args.repeat}"
    ds_cmd = args.deepseek_cmd or f"cargo run --release -q -p deepseek-bench -- --threads {args.threads}"
    pt_cmd = args.torch_cmd or f"{shlex.quote(sys.executable)} bench/torch_bench.py --threads {args.threads}"

    notes = []
    pt, ds = {}, {}
    rounds = max(1, args.rounds)
    for _ in range(rounds):
        if args.torch_json:
            got, err = load_side(args.torch_json, "PyTorch")
        else:
            got, err = run_side(pt_cmd + extra, "PyTorch")
        if err:
            notes.append(f"PyTorch run failed: {err}")
        keep_best(pt, got)
        if args.deepseek_json:
            got, err = load_side(args.deepseek_json, "deepseek")
        else:
            got, err = run_side(ds_cmd + extra, "deepseek")
        if err:
            notes.append(f"deepseek run failed: {err}")
        keep_best(ds, got)
    if rounds > 1:
        notes.append(f"each side's best of {rounds} alternating rounds")

    if args.only:
        order = [n.strip() for n in args.only.split(",") if n.strip()]
    else:
        order = list(pt) + [n for n in ds if n not in pt]
    text = render(ds, pt, order, args.threads, args.deepseek_json or ds_cmd, notes)
    print(text, end="")
    if args.append_results:
        nonempty = os.path.exists(args.append_results) and os.path.getsize(args.append_results) > 0
        with open(args.append_results, "a") as f:
            f.write(("\n" if nonempty else "") + text)
        print(f"[compare] appended to {args.append_results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
