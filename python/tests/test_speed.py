"""The binding's per-op overhead stays small (a regression to Python-level dispatch on the
operator path would show here). The bound is generous for a loaded machine; the measured
number is reported by bench/deepseek_py_bench.py."""

import time

import deepseek as ds


def test_add_8x8_overhead_is_small():
    a, b = ds.randn(8, 8), ds.randn(8, 8)
    best = float("inf")
    with ds.no_grad():
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(20000):
                a + b
            best = min(best, (time.perf_counter() - t0) / 20000)
    assert best < 4e-6, f"a + b on 8x8 took {best * 1e6:.2f} us"
