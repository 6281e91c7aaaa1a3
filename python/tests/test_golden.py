"""The PyTorch golden cases, evaluated through each case's ``expr`` with ``torch`` bound to
deepseek and ``F`` to deepseek.nn.functional (see DESIGN.md, "Testing").

* ``DEEPSEEK_GOLDEN`` names another golden file (the .safetensors beside it); the default
  is ``../shared/golden/golden.json`` relative to the repository root.
* LSTM/GRU cases call ``torch._VF``: the ``_VF`` shim below runs them through
  ``deepseek.nn.LSTM`` / ``GRU`` with the case's weights loaded by ``load_state_dict``,
  reading every option from the call's arguments.
* Optimizer cases run through ``deepseek.optim`` with the hyper-parameters of ``attrs``.
* The session ends with ``golden-python: N passed, M failed``.
"""

import json
import math
import os
import pathlib

import numpy as np
import pytest

import deepseek
import deepseek.nn.functional as F

from conftest import GOLDEN

ROOT = pathlib.Path(__file__).resolve().parents[2]


def golden_path():
    p = os.environ.get("DEEPSEEK_GOLDEN")
    if p:
        p = pathlib.Path(p)
        if not p.is_absolute() and not p.exists() and (ROOT / p).exists():
            p = ROOT / p
        return p
    return (ROOT / ".." / "shared" / "golden" / "golden.json").resolve()


def load_cases():
    path = golden_path()
    if not path.exists():
        return path, None, []
    doc = json.loads(path.read_text())
    return path, path.with_suffix(".safetensors"), doc["cases"]


PATH, ST_PATH, CASES = load_cases()
_TENSORS = {}


def tensors():
    if not _TENSORS:
        _TENSORS.update(deepseek.load_file(str(ST_PATH)))
    return _TENSORS


class _VF:
    """``torch._VF.lstm`` / ``gru`` over deepseek.nn.LSTM / GRU. Records which module
    parameter stands for which input tensor, so gradients can be compared per input."""

    links = []

    @classmethod
    def _run(cls, kind, input, hx, params, has_biases, num_layers, dropout, train,
             bidirectional, batch_first):
        h0 = hx[0] if kind == "LSTM" else hx
        mod_cls = deepseek.nn.LSTM if kind == "LSTM" else deepseek.nn.GRU
        m = mod_cls(input.shape[-1], h0.shape[-1], num_layers=num_layers, bias=has_biases,
                    batch_first=batch_first, dropout=dropout, bidirectional=bidirectional)
        m.train(train)
        names = m._flat_weights_names
        if len(names) != len(params):
            raise ValueError(f"{kind}: {len(params)} weights for {len(names)} parameters")
        m.load_state_dict(dict(zip(names, params)), strict=True)
        cls.links = [(w, getattr(m, n)) for w, n in zip(params, names)]
        if kind == "LSTM":
            out, (h, c) = m(input, (hx[0], hx[1]))
            return out, h, c
        out, h = m(input, hx)
        return out, h

    @classmethod
    def lstm(cls, input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
             batch_first):
        return cls._run("LSTM", input, hx, params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first)

    @classmethod
    def gru(cls, input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
            batch_first):
        return cls._run("GRU", input, hx, params, has_biases, num_layers, dropout, train,
                        bidirectional, batch_first)


class _TorchProxy:
    """``torch`` for the exprs: deepseek, plus the ``_VF`` shim."""

    _VF = _VF

    def __getattr__(self, name):
        return getattr(deepseek, name)


def _flatten(out):
    if isinstance(out, deepseek.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        r = []
        for o in out:
            r += _flatten(o)
        return r
    raise TypeError(f"expr returned {type(out).__name__}, not tensors")


def _kind(dt):
    if dt.is_floating_point:
        return "float"
    return "bool" if dt == deepseek.bool else "int"


def compare(what, got, want, rtol, atol):
    if tuple(got.shape) != tuple(want.shape):
        return f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    if _kind(got.dtype) != _kind(want.dtype):
        return f"{what}: dtype {got.dtype}, expected {want.dtype}"
    a = got.detach().double().numpy().astype(np.float64) if got.dtype != deepseek.bool else \
        got.numpy().astype(np.float64)
    b = want.double().numpy().astype(np.float64) if want.dtype != deepseek.bool else \
        want.numpy().astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.where(np.isnan(b), np.isnan(a),
                      np.where(np.isinf(b), a == b, np.abs(a - b) <= atol + rtol * np.abs(b)))
    if ok.all():
        return None
    err = np.where(ok, 0.0, np.nan_to_num(np.abs(a - b), nan=np.inf))
    i = int(np.argmax(err))
    idx = np.unravel_index(i, b.shape) if b.shape else ()
    return (f"{what}: max |a-b| = {err.flat[i]:.4e} at {tuple(int(j) for j in idx)}: got "
            f"{a.flat[i]}, expected {b.flat[i]}; {int((~ok).sum())}/{ok.size} out of tolerance")


def run_op_case(c):
    T = tensors()
    xs = []
    for i, n in enumerate(c["inputs"]):
        t = T[n].detach().clone()
        if c["grads"] and i < len(c["grads"]) and c["grads"][i] is not None and t.is_floating_point():
            t.requires_grad_(True)
        xs.append(t)
    env = {"torch": _TorchProxy(), "F": F, "math": math, "inf": math.inf, "nan": math.nan}
    env.update({f"x{i}": x for i, x in enumerate(xs)})
    _VF.links = []
    outs = _flatten(eval(c["expr"], env))
    if len(outs) != len(c["outputs"]):
        return [f"{len(outs)} outputs, expected {len(c['outputs'])}"]
    errs = [e for e in (compare(f"out{j}", o, T[w], c["rtol"], c["atol"])
                        for j, (o, w) in enumerate(zip(outs, c["outputs"]))) if e]
    if errs or not c["cotangents"] or not any(g is not None for g in c["grads"]):
        return errs
    diff = [o for o in outs if o.is_floating_point()]
    if len(diff) != len(c["cotangents"]):
        return [f"{len(diff)} float outputs for {len(c['cotangents'])} cotangents"]
    loss = None
    for o, cot in zip(diff, c["cotangents"]):
        term = (o * T[cot]).sum()
        loss = term if loss is None else loss + term
    if not loss.requires_grad:
        return ["backward: the outputs do not require grad"]
    loss.backward()
    linked = {id(src): p for src, p in _VF.links}
    for i, w in enumerate(c["grads"]):
        if w is None:
            continue
        g = xs[i].grad
        if g is None and id(xs[i]) in linked:
            g = linked[id(xs[i])].grad
        if g is None:
            errs.append(f"grad{i}: missing")
            continue
        e = compare(f"grad{i}", g, T[w], c["rtol"], c["atol"])
        if e:
            errs.append(e)
    return errs


_IMPL_SWITCHES = ("foreach", "capturable", "differentiable", "fused")


def run_optim_case(c):
    T = tensors()
    attrs = dict(c["attrs"])
    cls = getattr(deepseek.optim, attrs.pop("class"))
    for k in _IMPL_SWITCHES:
        attrs.pop(k, None)
    if "betas" in attrs:
        attrs["betas"] = tuple(attrs["betas"])
    p = deepseek.nn.Parameter(T[c["inputs"][0]].detach().clone())
    opt = cls([p], **attrs)
    errs = []
    for k, (g, want) in enumerate(zip(c["inputs"][1:], c["outputs"])):
        p.grad = T[g].detach().clone()
        opt.step()
        e = compare(f"p{k + 1} (after step {k + 1})", p.detach(), T[want], c["rtol"], c["atol"])
        if e:
            errs.append(e)
            break
    return errs


@pytest.mark.skipif(not CASES, reason=f"no golden file at {PATH}")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case):
    GOLDEN["ran"] = True
    errs = None
    try:
        errs = run_optim_case(case) if case["op"] == "optimizer" else run_op_case(case)
    except Exception as e:  # an unsupported op or a wrong result both count as failures
        errs = [f"{type(e).__name__}: {e}"]
    finally:
        GOLDEN["passed" if not errs else "failed"] += 1
    assert not errs, f"{case['name']} [{case['op']}] " + "; ".join(errs)


def test_golden_file_present():
    """The default golden file must exist (a missing file is a failure, not a skip)."""
    if os.environ.get("DEEPSEEK_GOLDEN") is None:
        assert PATH.exists(), f"golden file not found: {PATH}"
    else:
        assert CASES, f"no cases in {PATH}"
