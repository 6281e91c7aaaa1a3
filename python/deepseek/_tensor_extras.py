"""Python-level additions to ``deepseek.Tensor``: pickling (so tensors survive ``pickle``,
``copy.deepcopy`` and ``deepseek.save`` of arbitrary objects) and the ops that are
orderings or sampling (``sort``, ``argsort``, ``topk``, ``multinomial``), computed from the
data with numpy; their values are gathered with ``gather``, so they stay differentiable."""

import copyreg

import numpy as np

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


def _np(t):
    d = t.detach()
    if d.dtype in (_C.bfloat16, _C.float16):
        d = d.float()
    return d.numpy()


def sort(self, dim=-1, descending=False, stable=False):
    """``(values, indices)`` sorted along ``dim`` (stable)."""
    from .return_types import sort as _sort

    if self.numel() == 0:
        return _sort(self * 1, _C.zeros(*self.shape, dtype=_C.int64))
    a = _np(self)
    idx = np.argsort(-a if descending else a, axis=dim, kind="stable")
    ix = _C.tensor(np.ascontiguousarray(idx).astype(np.int64))
    return _sort(self.gather(dim, ix), ix)


def argsort(self, dim=-1, descending=False, stable=False):
    """``argsort(dim=-1, descending=False, stable=False)``: the indices that sort the tensor
    along ``dim``.
    """
    return sort(self, dim, descending).indices


def topk(self, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) elements along ``dim``: ``(values, indices)``."""
    n = self.shape[dim] if self.dim() else 1
    if not 0 <= k <= n:
        raise IndexError(f"topk: k ({k}) is out of range for dimension of size {n}")
    s = sort(self, dim, descending=largest)
    idx = s.indices.narrow(dim if dim >= 0 else self.dim() + dim, 0, k)
    from .return_types import topk as _topk

    if idx.numel() == 0:
        return _topk(_C.zeros(*idx.shape, dtype=self.dtype), idx)
    return _topk(self.gather(dim, idx), idx)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Samples indices from the rows of ``input`` (non-negative weights) with ``generator``
    or deepseek's global generator (so ``manual_seed`` makes it reproducible)."""
    if input.dim() not in (1, 2):
        raise ValueError("multinomial: prob_dist must be 1 or 2 dim")
    p = _np(input).astype(np.float64)
    if (p < 0).any() or not np.isfinite(p).all():
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or element < 0")
    rows = p.reshape(-1, p.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           "without replacement")
    out = np.zeros((rows.shape[0], num_samples), dtype=np.int64)
    u = _np(_C.rand(rows.shape[0], num_samples, generator=generator, dtype=_C.float64))
    for r in range(rows.shape[0]):
        w = rows[r].copy()
        for j in range(num_samples):
            total = w.sum()
            if total <= 0:
                raise RuntimeError("multinomial: invalid distribution (sum of probabilities <= 0)")
            c = np.cumsum(w)
            i = int(np.searchsorted(c, u[r, j] * total, side="right"))
            i = min(i, len(w) - 1)
            while w[i] == 0 and i > 0:
                i -= 1
            out[r, j] = i
            if not replacement:
                w[i] = 0.0
    t = _C.tensor(out)
    return t.reshape(-1) if input.dim() == 1 else t


def _install():
    copyreg.pickle(_C.Tensor, _reduce)
    _C.Tensor.sort = sort
    _C.Tensor.argsort = argsort
    _C.Tensor.topk = topk
    _C.Tensor.multinomial = multinomial
