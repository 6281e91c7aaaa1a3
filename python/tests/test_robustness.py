"""Odd inputs (empty tensors, scalars, half precision, bad arguments) raise Python
exceptions: no Rust panic and no crash of the interpreter."""

import itertools

import deepseek as ds
import deepseek.nn.functional as F

VALUES = [ds.zeros(0), ds.tensor(1.5), ds.ones(2, 3), ds.arange(6), ds.tensor([True, False]),
          ds.ones(2, 0, 3), ds.ones(3, dtype=ds.float16), ds.ones(3, dtype=ds.bfloat16)]
ARGS = [0, -1, 5, (0,), (), None, slice(None, None, 2), ds.tensor([1]), [0, 1], ...]
METHODS = ["sum", "mean", "amax", "argmax", "softmax", "log_softmax", "cumsum", "unsqueeze",
           "squeeze", "flatten", "transpose", "select", "narrow", "chunk", "split", "unbind",
           "flip", "tril", "norm", "var", "std", "max", "min", "prod", "logsumexp", "all", "any",
           "__getitem__", "view", "reshape", "expand", "repeat", "permute", "t", "item",
           "tolist", "float", "long", "__len__", "__bool__", "clamp", "pow", "exp", "gelu",
           "sort", "topk"]


def _panics(calls):
    bad = []
    for desc, f in calls:
        try:
            f()
        except BaseException as e:  # noqa: BLE001 - a PanicException is a BaseException
            if type(e).__name__ == "PanicException":
                bad.append(f"{desc}: {e}")
    return bad


def test_methods_on_odd_inputs_never_panic():
    calls = []
    for v in VALUES:
        for m in METHODS:
            for a in [()] + [(x,) for x in ARGS] + [(0, 1), (1, 0), (-1, -1)]:
                def f(v=v, m=m, a=a):
                    attr = getattr(v, m)
                    return attr(*a) if callable(attr) else attr
                calls.append((f"{tuple(v.shape)} {v.dtype} .{m}{a}", f))
    assert _panics(calls) == []


def test_binary_ops_on_odd_inputs_never_panic():
    calls = []
    for a, b in itertools.product(VALUES, repeat=2):
        for op in ["__add__", "__mul__", "__truediv__", "__matmul__", "__pow__", "__eq__",
                   "__lt__", "__floordiv__", "__mod__", "__and__"]:
            calls.append((f"{tuple(a.shape)} {op} {tuple(b.shape)}",
                          lambda a=a, b=b, op=op: getattr(a, op)(b)))
    assert _panics(calls) == []


def test_functional_on_odd_inputs_never_panic():
    fns = [F.relu, F.softmax, lambda x: F.cross_entropy(x, ds.tensor([0])),
           lambda x: F.embedding(ds.tensor([0]), x), lambda x: F.layer_norm(x, (3,)),
           lambda x: F.conv2d(x, ds.ones(1, 1, 1, 1)), lambda x: F.max_pool2d(x, 2),
           lambda x: F.pad(x, (1, 1)), lambda x: F.linear(x, ds.ones(2, 3))]
    calls = [(f"F #{i} on {tuple(v.shape)}", lambda f=f, v=v: f(v))
             for v in VALUES for i, f in enumerate(fns)]
    assert _panics(calls) == []


def test_empty_tensors_reshape_and_repeat():
    z = ds.zeros(2, 0)
    assert z.reshape(0, 2).shape == (0, 2) and z.flatten().shape == (0,)
    assert ds.ones(2, 3).repeat(1, 0).shape == (2, 0)
