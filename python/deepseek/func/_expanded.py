"""Per-example weight gradients of ``F.linear`` without batched weights (the idea of
Opacus' / PyTorch's "expanded weights").

Inside ``vmap(grad(f))`` an unbatched parameter is expanded over the vmap levels so that
every example owns a copy (see ``_autodiff``); ``F.linear`` with such a weight would then
run a batched matmul forward and backward. When the gradient is first order (no
``create_graph``), ``grad`` opens a ``Tape`` instead: ``F.linear`` with a taped weight runs
the plain (unexpanded) product, records its output ``y`` and input ``x``, and ``grad``
asks the engine for ``dL/dy`` as well; each example's weight gradient is then
``dL/dy^T x`` (an outer product for one row per example) and its bias gradient
``dL/dy`` summed over rows -- the hand-batched formulas. Other uses of the same weight in
``f`` still reach it through the engine; both parts are added."""

from .. import _C
from ._batched import BatchedTensor

_TAPES = []


class Tape:
    """The stand-ins eligible for the shortcut (by id) and the recorded linear calls."""

    def __init__(self):
        self.bases = {}  # id(stand-in BatchedTensor) -> (stand-in, plain unexpanded tensor)
        self.records = []  # (y value, x value, weight stand-in id, bias stand-in id or None)

    def __enter__(self):
        _TAPES.append(self)
        return self

    def __exit__(self, *exc):
        _TAPES.pop()
        return False

    def add(self, standin, base):
        self.bases[id(standin)] = (standin, base)


def _lookup(t):
    if not _TAPES or type(t) is not BatchedTensor:
        return None
    hit = _TAPES[-1].bases.get(id(t))
    return hit[1] if hit is not None and hit[0] is t else None


def linear(fn, x, weight, bias):
    """``F.linear`` through the tape, or None when the shortcut does not apply."""
    w0 = _lookup(weight)
    if w0 is None or type(x) is not BatchedTensor or x._lv != weight._lv:
        return None
    if bias is not None:
        b0 = _lookup(bias)
        if b0 is None or bias._lv != weight._lv:
            return None
    else:
        b0 = None
    y = fn(x._v, w0, b0)
    if not y.requires_grad:  # x is not differentiated: y becomes a leaf of the graph
        y.requires_grad_()
    _TAPES[-1].records.append((y, x._v, id(weight), None if bias is None else id(bias)))
    return BatchedTensor(y, x._lv)


def extra_inputs(tape):
    """The recorded outputs, whose gradients ``grad`` requests too."""
    return [y for y, _, _, _ in tape.records]


def add_grads(tape, ids, grads, gys):
    """Adds the per-example weight and bias gradients of the recorded linear calls to
    ``grads`` (aligned with the stand-in ids ``ids``); ``gys`` are ``dL/dy``."""
    pos = {i: k for k, i in enumerate(ids)}
    for (y, x, wid, bid), g in zip(tape.records, gys):
        if g is None:
            continue
        g = g.detach().contiguous()  # (strided: the outer product ran 5x slower)
        k = len(tape.bases[wid][0]._lv)
        bs = tuple(g.shape[:k])
        o, i = g.shape[-1], x.shape[-1]
        if g.dim() == k + 1:
            gw = g.unsqueeze(-1) * x.unsqueeze(-2)
            gb = g
        else:
            gf = g.reshape(-1, int(g.numel() // (_prod(bs) * o)), o)
            xf = x.reshape(gf.shape[0], gf.shape[1], i)
            gw = (gf.transpose(1, 2) @ xf).reshape(*bs, o, i)
            gb = gf.sum(1).reshape(*bs, o)
        j = pos[wid]
        grads[j] = gw if grads[j] is None else grads[j] + gw
        if bid is not None:
            j = pos[bid]
            grads[j] = gb if grads[j] is None else grads[j] + gb
    return grads


def _prod(s):
    n = 1
    for v in s:
        n *= v
    return n


def base_of(v, lv, full):
    """The unexpanded tensor behind a fresh stand-in, when it had no vmap level."""
    return v if not lv and full and isinstance(v, _C.Tensor) else None
