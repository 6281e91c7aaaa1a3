"""Deferred execution from Python: ``with deepseek.lazy()``, ``realize``, ``compile``."""

import math

import numpy as np
import pytest

import deepseek as torch


def gelu_chain(x):
    k = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + torch.tanh(k * (x + 0.044715 * torch.pow(x, 3))))


def test_lazy_block_fuses_and_matches_eager():
    torch.manual_seed(0)
    x = torch.randn(64, 33)
    want = gelu_chain(x).numpy()
    torch.reset_kernel_stats()
    with torch.lazy():
        y = gelu_chain(x)
        assert y.is_deferred
        assert torch.kernel_stats()["kernels"] == 0
        got = y.numpy()  # reading realises
    s = torch.kernel_stats()
    assert s["fused_kernels"] == 1, s
    np.testing.assert_array_equal(got, want)


def test_end_of_block_realises_and_errors_raise_at_the_call():
    x = torch.ones(3)
    with torch.lazy():
        y = x * 2 + 1
        with pytest.raises(ValueError):
            x + torch.ones(4)
    assert not y.is_deferred
    assert y.tolist() == [3.0, 3.0, 3.0]


def test_lazy_training_step_equals_eager():
    def step(lazy):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        x = torch.randn(5, 8)
        t = torch.randint(0, 4, (5,))
        losses = []
        for _ in range(3):
            prev = torch.set_lazy(lazy)
            try:
                loss = torch.nn.functional.cross_entropy(model(x), t)
                opt.zero_grad()
                loss.backward()
                opt.step()
            finally:
                torch.set_lazy(prev)
            losses.append(loss.item())
        return losses, [p.detach().numpy().copy() for p in model.parameters()]

    le, pe = step(False)
    ll, pl = step(True)
    assert le == ll
    for a, b in zip(pe, pl):
        np.testing.assert_array_equal(a, b)


def test_compile_function_and_module():
    f = torch.compile(gelu_chain)
    x = torch.randn(10)
    np.testing.assert_array_equal(f(x).numpy(), gelu_chain(x).numpy())
    m = torch.nn.Linear(4, 3)
    want = m(torch.ones(2, 4)).detach().numpy()
    cm = torch.compile(m)
    assert cm is m and list(cm.state_dict()) == ["weight", "bias"]
    out = cm(torch.ones(2, 4))
    assert not out.is_deferred
    np.testing.assert_array_equal(out.detach().numpy(), want)
    # A new shape just runs (nothing is specialised to the first one).
    assert cm(torch.ones(7, 4)).shape == (7, 3)
