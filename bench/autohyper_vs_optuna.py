"""AutoHyper (deepseek.autohyper) against Optuna's TPE sampler and random search.

Branin (2-d), Hartmann-6 and Rosenbrock-5 (on [-5, 10]^5): each method gets the same budget
(--trials, default 100) on each of --seeds seeds (default 20); the table gives the median over
seeds of the best value found, of the regret (best - known minimum), and the ratio of
AutoHyper's median regret to Optuna's and to random search's (< 1: AutoHyper better).

    python bench/autohyper_vs_optuna.py [--seeds 20] [--trials 100] [--methods gp,tpe,optuna,random]
        [--record bench/RESULTS.md]     # append the table with the date and CPU model
"""

import argparse
import datetime
import io
import math
import subprocess
import statistics
import sys
import time

import deepseek.autohyper as ah


def branin(x):
    x1, x2 = x
    a, b, c = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_H_P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
_H_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(x):
    s = 0.0
    for i in range(4):
        inner = sum(_H_A[i][j] * (x[j] - 1e-4 * _H_P[i][j]) ** 2 for j in range(6))
        s += _H_ALPHA[i] * math.exp(-inner)
    return -s


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


FUNCTIONS = {
    # name: (function, bounds, known minimum)
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887357729738),
    "hartmann6": (hartmann6, [(0.0, 1.0)] * 6, -3.322368011391339),
    "rosenbrock5": (rosenbrock, [(-5.0, 10.0)] * 5, 0.0),
}


def run_autohyper(sampler, f, bounds, trials):
    study = ah.create_study(direction="minimize", sampler=sampler)
    study.optimize(lambda t: f([t.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]),
                   n_trials=trials)
    return study.best_value


def run_optuna(seed, f, bounds, trials):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(lambda t: f([t.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]),
                   n_trials=trials)
    return study.best_value


METHODS = {
    "gp": ("AutoHyper GP-EI", lambda s, f, b, n: run_autohyper(ah.GPSampler(seed=s), f, b, n)),
    "tpe": ("AutoHyper TPE", lambda s, f, b, n: run_autohyper(ah.TPESampler(seed=s), f, b, n)),
    "optuna": ("Optuna TPE", run_optuna),
    "random": ("random search", lambda s, f, b, n: run_autohyper(ah.RandomSampler(seed=s), f, b, n)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--methods", default="gp,tpe,optuna,random")
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--record", metavar="RESULTS_MD", help="append the table to this file")
    a = ap.parse_args()
    out = io.StringIO()

    def say(*args):
        print(*args)
        print(*args, file=out)

    methods = a.methods.split(",")
    results = {}
    for fname in a.functions.split(","):
        f, bounds, fmin = FUNCTIONS[fname]
        for m in methods:
            t0 = time.time()
            bests = [METHODS[m][1](seed, f, bounds, a.trials) for seed in range(a.seeds)]
            results[fname, m] = (bests, time.time() - t0)
            print(f"# {fname:12s} {METHODS[m][0]:16s} median best {statistics.median(bests):.6g} "
                  f"({time.time() - t0:.1f}s)", file=sys.stderr, flush=True)
    say(f"\n{a.seeds} seeds x {a.trials} trials; median over seeds of the best value found "
          f"(regret = best - known minimum)\n")
    head = f"| function | method | median best | median regret | seconds/run |"
    ours = [m for m in methods if m in ("gp", "tpe")]
    ratio_cols = [r for r in ("optuna", "random") if r in methods]
    head += "".join(f" regret / {METHODS[r][0]} |" for r in ratio_cols)
    say(head)
    say("|" + "---|" * (head.count("|") - 1))
    verdict = []
    for fname in a.functions.split(","):
        fmin = FUNCTIONS[fname][2]
        med = {m: statistics.median(b - fmin for b in results[fname, m][0]) for m in methods}
        for m in methods:
            bests, secs = results[fname, m]
            row = (f"| {fname} | {METHODS[m][0]} | {statistics.median(bests):.6g} | {med[m]:.4g} | "
                   f"{secs / a.seeds:.2f} |")
            for r in ratio_cols:
                row += f" {med[m] / med[r]:.3f} |" if m in ours and med[r] > 0 else " |"
            say(row)
        for m in ours:
            if "optuna" in methods and "random" in methods:
                verdict.append(f"{fname}: {METHODS[m][0]} "
                               f"{'<=' if med[m] <= med['optuna'] else '>'} Optuna, "
                               f"{'<' if med[m] < med['random'] else '>='} random")
    say()
    for v in verdict:
        say(v)
    if a.record:
        try:
            cpu = next(l.split(":", 1)[1].strip() for l in subprocess.run(
                ["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if l.startswith("Model name"))
        except Exception:
            cpu = "unknown CPU"
        import optuna
        with open(a.record, "a") as f:
            f.write(f"\n## {datetime.date.today()}, issue 14: AutoHyper vs Optuna "
                    f"(`bench/autohyper_vs_optuna.py`)\n\n{cpu}; optuna {optuna.__version__}."
                    f"\n\n```\n{out.getvalue().strip()}\n```\n")


if __name__ == "__main__":
    main()
