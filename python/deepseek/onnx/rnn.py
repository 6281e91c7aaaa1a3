"""ONNX export of ``nn.LSTM`` / ``nn.GRU``: PyTorch's gate order reordered to ONNX's (LSTM
i,f,g,o → i,o,f,c; GRU r,z,n → z,r,h, ``linear_before_reset=1``), one ONNX node per layer,
``batch_first`` by transposes, initial states sliced per layer."""

import numpy as np

from .. import _C
from . import ExportError, _np


def _reorder(a, order, h):
    return np.concatenate([a[i * h:(i + 1) * h] for i in order], axis=0)


def rnn(g, m, args, out, name):
    """Converts an LSTM/GRU call (``args`` = its positional inputs, ``out`` = its output)."""
    lstm = type(m).__name__ == "LSTM"
    x = args[0]
    hx = args[1] if len(args) > 1 else None
    if hx is not None:  # LSTM: (h0, c0); GRU: h0 — each [layers * dirs, batch, H]
        states = list(hx) if lstm else [hx]
        if len(states) != (2 if lstm else 1) or not all(
                isinstance(t, _C.Tensor) and t.dim() == 3 for t in states):
            raise ExportError(f"deepseek.onnx.export: {type(m).__name__} ({name}): the "
                              "initial state must be batched 3-d tensors")
        hx = [g.name_of(t, name) for t in states]
    if getattr(m, "proj_size", 0):
        raise ExportError(f"deepseek.onnx.export: LSTM ({name}) with proj_size has no ONNX "
                          "form")
    if x.dim() != 3:
        raise ExportError(f"deepseek.onnx.export: {type(m).__name__} ({name}) is exported for "
                          "batched 3-d inputs")
    h = m.hidden_size
    dirs = 2 if m.bidirectional else 1
    # PyTorch's gate order -> ONNX's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h
    order = [0, 3, 1, 2] if lstm else [1, 0, 2]
    ng = 4 if lstm else 3
    cur = g.name_of(x, name)
    if m.batch_first:  # ONNX Runtime runs layout 0 only: [seq, batch, input]
        cur = g.node("Transpose", [cur], base=name, perm=[1, 0, 2])
    hs, cs = [], []
    for layer in range(m.num_layers):
        Ws, Rs, Bs = [], [], []
        for d in range(dirs):
            sfx = f"l{layer}" + ("_reverse" if d == 1 else "")
            Ws.append(_reorder(_np(getattr(m, f"weight_ih_{sfx}")), order, h))
            Rs.append(_reorder(_np(getattr(m, f"weight_hh_{sfx}")), order, h))
            if m.bias:
                Bs.append(np.concatenate([
                    _reorder(_np(getattr(m, f"bias_ih_{sfx}")), order, h),
                    _reorder(_np(getattr(m, f"bias_hh_{sfx}")), order, h)]))
            else:
                Bs.append(np.zeros(2 * ng * h, dtype=Ws[-1].dtype))
        base = f"{name}.l{layer}"
        attrs = dict(hidden_size=h, direction="bidirectional" if dirs == 2 else "forward")
        if not lstm:
            attrs["linear_before_reset"] = 1
        ins = [cur, g.const(np.stack(Ws), f"{base}.W"), g.const(np.stack(Rs), f"{base}.R"),
               g.const(np.stack(Bs), f"{base}.B")]
        if hx is not None:  # this layer's [dirs, batch, H] slice of each initial state
            ins.append("")  # sequence_lens
            for st in hx:
                if m.num_layers == 1:
                    ins.append(st)
                else:
                    ins.append(g.node("Slice", [st, g.ints([layer * dirs]),
                                                g.ints([(layer + 1) * dirs]), g.ints([0])],
                                      base=base))
        outs = g.node("LSTM" if lstm else "GRU", ins, n_out=3 if lstm else 2, base=base,
                      **attrs)
        # Y [seq, dirs, batch, H] -> [seq, batch, dirs * H]
        y = g.node("Transpose", [outs[0]], base=base, perm=[0, 2, 1, 3])
        cur = g.node("Reshape", [y, g.ints([0, 0, -1])], base=base)
        hs.append(outs[1])
        if lstm:
            cs.append(outs[2])
    if m.batch_first:
        cur = g.node("Transpose", [cur], base=name, perm=[1, 0, 2])
    cat = (lambda v: v[0] if len(v) == 1 else g.node("Concat", v, base=name, axis=0))
    out_t, state = out
    g.bind(out_t, cur)
    if lstm:
        g.bind(state[0], cat(hs))
        g.bind(state[1], cat(cs))
    else:
        g.bind(state, cat(hs))
