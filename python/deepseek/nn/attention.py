"""Multi-head attention with PyTorch's parameters and masks: ``MultiheadAttention`` and the
functional core it shares with ``F.multi_head_attention_forward`` and the tensor-parallel
attention (``_mha``, ``_attn_mask``)."""

import math

from .. import _C
from . import functional as F
from . import init
from .layers import NonDynamicallyQuantizableLinear, _check_device, _param
from .module import Module

__all__ = ["MultiheadAttention"]


def _attn_mask(attn_mask, key_padding_mask, is_causal, n, h, L, S, dtype):
    """One additive float mask broadcastable to [N, H, L, S] from PyTorch's MHA masks (bool
    masks: True = not allowed), or None."""
    m = None
    if attn_mask is not None:
        am = attn_mask
        if am.dtype == _C.bool:
            am = _C.zeros(*am.shape, dtype=dtype).masked_fill(am, float("-inf"))
        else:
            am = am.to(dtype)
        if am.dim() == 3:  # [N * H, L, S]
            am = am.reshape(n, h, L, S)
        m = am
    elif is_causal:
        m = _C.zeros(L, S, dtype=dtype).masked_fill(
            _C.ones(L, S, dtype=_C.bool).triu(1), float("-inf"))
    if key_padding_mask is not None:
        kp = key_padding_mask
        if kp.dtype == _C.bool:
            kp = _C.zeros(*kp.shape, dtype=dtype).masked_fill(kp, float("-inf"))
        kp = kp.to(dtype).reshape(n, 1, 1, S)
        m = kp if m is None else m + kp
    return m


def _mha(query, key, value, embed_dim, num_heads, in_w, in_b, out_w, out_b, attn_mask,
         key_padding_mask, is_causal, dropout_p, training, need_weights, average_attn_weights):
    """Multi-head attention over [L, N, E] inputs: the fused Rust op when no option needs
    more, else the same computation composed here (masks, attention dropout, weights).
    ``in_w`` may hold fewer heads than the layer (``[3 * inner, E]``, a tensor-parallel
    rank's share): the result is then ``[L, N, out_w.shape[0]]`` from ``inner`` columns."""
    L, n, _ = query.shape
    S = key.shape[0]
    inner = in_w.shape[0] // 3
    simple_mask = attn_mask is None or attn_mask.dim() == 2
    if (not need_weights and key_padding_mask is None and simple_mask
            and (dropout_p == 0.0 or not training)):
        m = attn_mask
        if m is not None and m.dtype == _C.bool:
            m = _C.zeros(*m.shape, dtype=query.dtype).masked_fill(m, float("-inf"))
        if m is not None and is_causal:
            m = _attn_mask(None, None, True, n, num_heads, L, S, query.dtype) + m
            is_causal = False
        return F._C_F.mha(query, key, value, embed_dim, num_heads, in_w, in_b, out_w, out_b,
                          m, is_causal), None
    hd = inner // num_heads
    wq, wk, wv = in_w.chunk(3, 0)
    bq, bk, bv = in_b.chunk(3, 0) if in_b is not None else (None, None, None)

    def heads(t, w, b, length):
        return F.linear(t, w, b).reshape(length, n, num_heads, hd).permute(1, 2, 0, 3)

    q, k, v = heads(query, wq, bq, L), heads(key, wk, bk, S), heads(value, wv, bv, S)
    scores = q.matmul(k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
    m = _attn_mask(attn_mask, key_padding_mask, is_causal, n, num_heads, L, S, query.dtype)
    if m is not None:
        scores = scores + m
    p = scores.softmax(-1)
    if _C._is_recording_attention():  # inside nn.capture_attention
        _C._record_attention_map(p)
    if dropout_p > 0.0 and training:
        p = F.dropout(p, dropout_p, True)
    o = p.matmul(v).permute(2, 0, 1, 3).reshape(L, n, inner)
    out = F.linear(o, out_w, out_b)
    if not need_weights:
        return out, None
    return out, (p.mean(1) if average_attn_weights else p)


class MultiheadAttention(Module):
    """Multi-head self/cross attention with PyTorch's parameters (``in_proj_weight``
    [3E, E] xavier-uniform, ``in_proj_bias`` zeros, ``out_proj`` Linear with zero bias).
    ``forward`` returns ``(output, weights)`` like PyTorch: weights averaged over heads when
    ``need_weights`` (the default), None otherwise; ``attn_mask`` (2-D or [N*H, L, S], bool
    = not allowed, or additive float), ``key_padding_mask`` and attention dropout are
    supported. Without weights, masks beyond 2-D or dropout, the fused Rust op runs."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        _check_device(device)
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or (vdim not in (None, embed_dim)):
            raise NotImplementedError("MultiheadAttention: add_bias_kv, add_zero_attn and "
                                      "kdim/vdim != embed_dim are not supported")
        if num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = _param((3 * embed_dim, embed_dim))
        if bias:
            self.in_proj_bias = _param((3 * embed_dim,))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if dtype is not None:
            self.to(dtype)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, w = _mha(query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
                      self.in_proj_bias, self.out_proj.weight, self.out_proj.bias, attn_mask,
                      key_padding_mask, is_causal, self.dropout, self.training, need_weights,
                      average_attn_weights)
        if unbatched:
            out = out.squeeze(1)
            if w is not None:
                w = w.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, w
