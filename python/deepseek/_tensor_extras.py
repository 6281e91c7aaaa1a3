"""Python-level additions to ``deepseek.Tensor``: pickling (so tensors survive ``pickle``,
``copy.deepcopy`` and ``deepseek.save`` of arbitrary objects)."""

import copyreg

from . import _C


def _rebuild(data, dtype_name, requires_grad):
    t = _C.tensor(data, dtype=dtype_name)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce(t):
    d = t.detach()
    name = str(t.dtype).split(".")[-1]
    if name == "bfloat16":
        data = d.float().numpy()
    else:
        data = d.numpy()
    return (_rebuild, (data, name, t.requires_grad))


def _install():
    copyreg.pickle(_C.Tensor, _reduce)
