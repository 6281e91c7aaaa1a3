"""Every public callable of the main namespaces has a docstring and an honest signature.

Issue 15: ``help(F.cross_entropy)`` showed ``ignore_index=Ellipsis`` (PyO3 renders negative
defaults as ``...``) and many functions had no docstring at all.
"""

import inspect

import pytest

import deepseek
import deepseek.nn as nn
import deepseek.nn.functional as F
import deepseek.optim as optim

NAMESPACES = {"deepseek": deepseek, "deepseek.nn": nn, "deepseek.nn.functional": F,
              "deepseek.optim": optim, "deepseek.Tensor": deepseek.Tensor}


def _public_callables():
    for label, ns in NAMESPACES.items():
        for name in dir(ns):
            if name.startswith("_"):
                continue
            obj = getattr(ns, name)
            if callable(obj) and not isinstance(obj, type(deepseek)):
                yield label, name, obj


def test_every_public_callable_has_a_docstring():
    missing = sorted(f"{label}.{name}" for label, name, obj in _public_callables()
                     if not (getattr(obj, "__doc__", None) or "").strip())
    assert not missing, f"{len(missing)} public callables without a docstring: {missing}"


def test_signatures_show_real_defaults():
    bad = []
    for label, name, obj in _public_callables():
        try:
            sig = str(inspect.signature(obj))
        except (TypeError, ValueError):
            continue  # no introspectable signature (C slots, some builtins)
        if "Ellipsis" in sig or "=..." in sig:
            bad.append(f"{label}.{name}{sig}")
    assert not bad, bad


@pytest.mark.parametrize("fn,needle", [(F.cross_entropy, "ignore_index=-100"),
                                       (F.nll_loss, "ignore_index=-100"),
                                       (F.one_hot, "num_classes=-1"),
                                       (deepseek.Tensor.softmax, "dim=-1"),
                                       (deepseek.Tensor.flatten, "end_dim=-1")])
def test_negative_defaults_in_help(fn, needle):
    assert needle in str(inspect.signature(fn))
    assert (fn.__doc__ or "").strip()
