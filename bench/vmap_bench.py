"""deepseek.func.vmap against the hand-batched computation, and the jvp implementation
choice (double-vjp against contracting a reverse-mode Jacobian), in one run.

    PYTHONPATH=python python bench/vmap_bench.py [--batch 1024] [--reps 30]

Workloads (batch of 1024 examples by default):
  mlp        vmap(lambda x: (W2 @ tanh(W1 @ x + b1)).sum())
             vs (tanh(X @ W1.T + b1) @ W2.T).sum(-1)
  per-sample vmap(grad(loss), in_dims=(None, 0, 0))(params, X, Y) for a Linear(64, 10) model
             with cross-entropy and functional_call, vs the closed-form per-example gradients
             (softmax(XW^T+b) - onehot(Y)) outer X computed batched; also against the same
             formula with dL/dy from autograd (cross_entropy forward and backward).
Times are the best of 5 alternating rounds of --reps runs; ratio = vmap / hand-batched.
"""

import argparse
import time

import deepseek as ds
import deepseek.nn.functional as F
from deepseek import func


def timeit(fn, reps):
    """The best of ``reps`` timed runs after warm-up (the shared VM's noise only adds)."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def pair(a, b, reps, rounds=5):
    """Best times of ``a`` and ``b``, measured in alternating rounds."""
    ta = tb = float("inf")
    for _ in range(rounds):
        ta = min(ta, timeit(a, reps))
        tb = min(tb, timeit(b, reps))
    return ta, tb


def realize(x):
    if isinstance(x, dict):
        for v in x.values():
            v.realize() if hasattr(v, "realize") else None
    elif hasattr(x, "realize"):
        x.realize()
    return x


def bench_mlp(n, reps):
    ds.manual_seed(0)
    W1, b1, W2 = ds.randn(64, 32) * 0.2, ds.randn(64) * 0.1, ds.randn(16, 64) * 0.2
    X = ds.randn(n, 32)
    f = lambda x: (W2 @ ds.tanh(W1 @ x + b1)).sum()  # noqa: E731
    vf = func.vmap(f)
    hand = lambda: (ds.tanh(X @ W1.t() + b1) @ W2.t()).sum(-1)  # noqa: E731
    diff = float((vf(X) - hand()).abs().max())
    assert diff < 1e-4, diff
    return pair(lambda: realize(vf(X)), lambda: realize(hand()), reps)


def bench_per_sample(n, reps):
    ds.manual_seed(0)
    model = ds.nn.Linear(64, 10)
    params = {k: v.detach() for k, v in model.named_parameters()}
    X = ds.randn(n, 64)
    Y = ds.randint(0, 10, (n,))

    def loss(p, x, y):
        out = func.functional_call(model, p, (x,))
        return F.cross_entropy(out, y)

    vg = func.vmap(func.grad(loss), in_dims=(None, 0, 0))
    eye = ds.eye(10)

    def hand():
        with ds.no_grad():
            g = (X @ params["weight"].t() + params["bias"]).softmax(-1) - eye[Y]
            return {"weight": g.unsqueeze(2) * X.unsqueeze(1), "bias": g}

    def hand_autograd():
        y = F.linear(X, params["weight"], params["bias"]).requires_grad_()
        (g,) = ds.autograd.grad(F.cross_entropy(y, Y, reduction="sum"), [y])
        g = g.detach()
        return {"weight": g.unsqueeze(2) * X.unsqueeze(1), "bias": g}

    got, want, want2 = vg(params, X, Y), hand(), hand_autograd()
    diff = max(float((got[k] - want[k]).abs().max()) for k in got)
    diff2 = max(float((want2[k] - want[k]).abs().max()) for k in got)
    assert diff < 1e-5 and diff2 < 1e-5, (diff, diff2)
    tv, th = pair(lambda: realize(vg(params, X, Y)), lambda: realize(hand()), reps)
    _, ta = pair(lambda: realize(vg(params, X, Y)), lambda: realize(hand_autograd()), reps)
    return tv, th, ta


def bench_jvp(reps):
    """double-vjp jvp against building the Jacobian (jacrev) and contracting it."""
    from deepseek.func._autodiff import _jvp_by_jacobian

    rows = []
    for m in (16, 256):
        ds.manual_seed(1)
        W = ds.randn(m, 256) * 0.05
        x, v = ds.randn(256), ds.randn(256)
        f = lambda x: (W @ x.tanh()).sin()  # noqa: E731
        a = func.jvp(f, (x,), (v,))[1]
        b = _jvp_by_jacobian(f, (x,), [v], False)
        assert float((a - b).abs().max()) < 1e-4
        t_dv = timeit(lambda: realize(func.jvp(f, (x,), (v,))[1]), reps)
        t_jac = timeit(lambda: realize(_jvp_by_jacobian(f, (x,), [v], False)), reps)
        t_f = timeit(lambda: realize(f(x)), reps)
        rows.append((m, t_f, t_dv, t_jac))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=30)
    a = ap.parse_args()
    print(f"deepseek {'lazy' if ds.is_lazy() else 'eager'}, threads={ds.get_num_threads()}, "
          f"batch={a.batch}")
    tv, th = bench_mlp(a.batch, a.reps)
    print(f"mlp        vmap {tv * 1e3:8.3f} ms   hand-batched {th * 1e3:8.3f} ms   "
          f"ratio {tv / th:.2f}")
    tv, th, ta = bench_per_sample(a.batch, a.reps)
    print(f"per-sample vmap(grad) {tv * 1e3:8.3f} ms   hand-batched {th * 1e3:8.3f} ms   "
          f"ratio {tv / th:.2f}   (hand-batched through autograd: {ta * 1e3:.3f} ms, "
          f"ratio {tv / ta:.2f})")
    print(f"fallbacks: {func.fallback_counts()}")
    for m, t_f, t_dv, t_jac in bench_jvp(a.reps):
        print(f"jvp f: R^256 -> R^{m}: forward {t_f * 1e3:.3f} ms, double-vjp "
              f"{t_dv * 1e3:.3f} ms ({t_dv / t_f:.1f}x forward), jacobian-contract "
              f"{t_jac * 1e3:.3f} ms ({t_jac / t_f:.1f}x forward)")


if __name__ == "__main__":
    main()
