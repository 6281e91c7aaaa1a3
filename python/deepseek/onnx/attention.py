"""ONNX export of ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``.

Both are exported as units from their parameters and call arguments (their ``forward`` is
wrapped during the export, so keyword arguments such as ``attn_mask``, ``need_weights`` and
``src_key_padding_mask`` are seen): the in-projection as three ``MatMul`` + ``Add``, heads by
``Reshape``/``Transpose``, ``softmax(Q Kᵀ / √d + mask) V``, the out-projection; attention
masks (2-D, float additive or bool "not allowed") and key padding masks (bool [N, S]) as
``Add``/``Where``; the averaged (or per-head) attention weights when ``need_weights``. Batch
and sequence axes stay dynamic. The encoder layer adds its LayerNorms (pre- or post-norm),
residuals and ReLU/GELU feed-forward. Attention dropout and the 3-D per-head masks have no
export (inference graphs; a 3-D mask is an error).
"""

import math

import numpy as np

from .. import _C


def _err(msg):
    from . import ExportError
    return ExportError(f"deepseek.onnx.export: {msg}")


def _value(g, t, where):
    """The graph value of a tensor argument (a traced value or a constant, bool masks
    included)."""
    if isinstance(t, _C.Tensor) and not g.traced(t) and t.grad_fn is None:
        name = g.const(t, "constant")
        g.bind(t, name)
        return name
    return g.name_of(t, where)


def _proj(g, xn, w, b, name):
    y = g.node("MatMul", [xn, g.const(w.detach().t().contiguous(), f"{name}.weight_T")],
               base=name)
    if b is not None:
        y = g.node("Add", [y, g.const(b.detach(), f"{name}.bias")], base=name)
    return y


def _heads(g, xn, h, d, perm, name):
    r = g.node("Reshape", [xn, g.ints([0, 0, h, d])], base=name)
    return g.node("Transpose", [r], base=name, perm=perm)


def emit_mha(g, m, qn, kn, vn, rank, attn_mask, key_padding_mask, need_weights,
             average_attn_weights, is_causal, name):
    """Emits the attention of module ``m`` on graph values ``qn``/``kn``/``vn`` (rank 2 =
    unbatched, 3 = batched in ``m.batch_first`` layout); returns (output, weights or None)."""
    if is_causal and attn_mask is None:
        raise _err(f"MultiheadAttention ({name}): is_causal without an attn_mask has no export; "
                   "pass the causal mask as attn_mask")
    e, h = m.embed_dim, m.num_heads
    d = e // h

    def to_batch_first(xn):
        if rank == 2:
            return g.node("Unsqueeze", [xn, g.ints([0])], base=name)
        if not m.batch_first:
            return g.node("Transpose", [xn], base=name, perm=[1, 0, 2])
        return xn

    same_kv = kn == vn
    qb = to_batch_first(qn)
    kb = qb if kn == qn else to_batch_first(kn)
    vb = kb if same_kv else to_batch_first(vn)
    w, b = m.in_proj_weight, m.in_proj_bias
    parts = [(w[i * e:(i + 1) * e], None if b is None else b[i * e:(i + 1) * e])
             for i in range(3)]
    q = _heads(g, _proj(g, qb, *parts[0], f"{name}.q_proj"), h, d, [0, 2, 1, 3], name)
    k = _heads(g, _proj(g, kb, *parts[1], f"{name}.k_proj"), h, d, [0, 2, 3, 1], name)
    v = _heads(g, _proj(g, vb, *parts[2], f"{name}.v_proj"), h, d, [0, 2, 1, 3], name)
    scores = g.node("Mul", [g.node("MatMul", [q, k], base=name),
                            g.const(np.asarray(1.0 / math.sqrt(d), np.float32), "scale")],
                    base=name)
    neg_inf = None
    if attn_mask is not None:
        if attn_mask.dim() != 2:
            raise _err(f"MultiheadAttention ({name}): only 2-D attn_mask is exported, got "
                       f"{attn_mask.dim()}-D")
        mn = _value(g, attn_mask, f"{name} attn_mask")
        if attn_mask.is_floating_point():
            scores = g.node("Add", [scores, mn], base=name)
        else:
            neg_inf = g.const(np.asarray(-np.inf, np.float32), "neg_inf")
            scores = g.node("Where", [mn, neg_inf, scores], base=name)
    if key_padding_mask is not None:
        if key_padding_mask.is_floating_point():
            raise _err(f"MultiheadAttention ({name}): only bool key_padding_mask is exported")
        kp = _value(g, key_padding_mask, f"{name} key_padding_mask")
        axes = [0, 1, 2] if rank == 2 else [1, 2]
        kp = g.node("Unsqueeze", [kp, g.ints(axes)], base=name)
        neg_inf = neg_inf or g.const(np.asarray(-np.inf, np.float32), "neg_inf")
        scores = g.node("Where", [kp, neg_inf, scores], base=name)
    p = g.node("Softmax", [scores], base=name, axis=-1)
    o = g.node("Transpose", [g.node("MatMul", [p, v], base=name)], base=name, perm=[0, 2, 1, 3])
    o = g.node("Reshape", [o, g.ints([0, 0, e])], base=name)
    o = _proj(g, o, m.out_proj.weight, m.out_proj.bias, f"{name}.out_proj")
    if rank == 2:
        o = g.node("Squeeze", [o, g.ints([0])], base=name)
    elif not m.batch_first:
        o = g.node("Transpose", [o], base=name, perm=[1, 0, 2])
    wts = None
    if need_weights:
        wts = p
        if average_attn_weights:
            if g.opset >= 18:
                wts = g.node("ReduceMean", [p, g.ints([1])], base=name, keepdims=0)
            else:
                wts = g.node("ReduceMean", [p], base=name, axes=[1], keepdims=0)
        if rank == 2:
            wts = g.node("Squeeze", [wts, g.ints([0])], base=name)
    return o, wts


def _mha_forward(g, orig, fresh_leaf, names):
    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        args = (query, key, value, key_padding_mask, need_weights, attn_mask,
                average_attn_weights, is_causal)
        if g.depth != 0:
            return orig(self, *args)
        g.depth += 1
        try:
            out, w = orig(self, *args)
        finally:
            g.depth -= 1
        out, w = fresh_leaf(out), fresh_leaf(w)
        name = names.get(id(self), "MultiheadAttention")
        qn, kn, vn = (_value(g, t, name) for t in (query, key, value))
        o, wn = emit_mha(g, self, qn, kn, vn, query.dim(), attn_mask, key_padding_mask,
                         need_weights, average_attn_weights, is_causal, name)
        g.bind(out, o)
        if w is not None:
            g.bind(w, wn)
        return out, w
    return forward


def _layer_norm(g, m, xn, name):
    from . import _layer_norm as conv
    pin, pout = _C.zeros(1), _C.zeros(1)
    g.bind(pin, xn)
    conv(g, m, pin, pout, name)
    return g.env[id(pout)]


def _tel_forward(g, orig, fresh_leaf, names):
    from ..nn import functional as F

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        if g.depth != 0:
            return orig(self, src, src_mask, src_key_padding_mask, is_causal)
        g.depth += 1
        try:
            out = orig(self, src, src_mask, src_key_padding_mask, is_causal)
        finally:
            g.depth -= 1
        out = fresh_leaf(out)
        name = names.get(id(self), "TransformerEncoderLayer")
        act = self.activation
        if act not in (F.relu, F.gelu) and getattr(act, "__name__", "") not in ("relu", "gelu"):
            raise _err(f"TransformerEncoderLayer ({name}): activation {act!r} has no export "
                       "(relu or gelu)")
        rank = src.dim()

        def sa(xn):
            o, _ = emit_mha(g, self.self_attn, xn, xn, xn, rank, src_mask, src_key_padding_mask,
                            False, True, is_causal, f"{name}.self_attn")
            return o

        def ff(xn):
            y = _proj(g, xn, self.linear1.weight, self.linear1.bias, f"{name}.linear1")
            if act is F.relu or getattr(act, "__name__", "") == "relu":
                y = g.node("Relu", [y], base=name)
            else:
                from . import _gelu
                y = _gelu(g, y, "none", src, f"{name}.gelu")
            return _proj(g, y, self.linear2.weight, self.linear2.bias, f"{name}.linear2")

        x = _value(g, src, name)
        if self.norm_first:
            x = g.node("Add", [x, sa(_layer_norm(g, self.norm1, x, f"{name}.norm1"))])
            x = g.node("Add", [x, ff(_layer_norm(g, self.norm2, x, f"{name}.norm2"))])
        else:
            x = _layer_norm(g, self.norm1, g.node("Add", [x, sa(x)]), f"{name}.norm1")
            x = _layer_norm(g, self.norm2, g.node("Add", [x, ff(x)]), f"{name}.norm2")
        g.bind(out, x)
        return out
    return forward


def forward_patches(g, model, fresh_leaf):
    """``{class: wrapped forward}`` for the attention modules, and the set of those classes
    (the exporter converts them as units: no refusal hooks on them or their children)."""
    from ..nn import layers as L
    names = {id(m): (n or "model") for n, m in model.named_modules()}
    return {
        L.MultiheadAttention: _mha_forward(g, L.MultiheadAttention.forward, fresh_leaf, names),
        L.TransformerEncoderLayer: _tel_forward(g, L.TransformerEncoderLayer.forward,
                                                fresh_leaf, names),
    }
