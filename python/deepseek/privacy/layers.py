"""Layers rewritten so that per-sample gradients come from the ``nn.Linear`` rule.

``nn.LSTM``, ``nn.GRU`` and ``nn.MultiheadAttention`` run as fused ops, so no hook sees their
inner inputs. Their counterparts here (Opacus' ``DPLSTM``, ``DPGRU``,
``DPMultiheadAttention``) compute the same functions from ``nn.Linear`` layers:

* :class:`DPLSTM` / :class:`DPGRU`: per layer, input-to-hidden applied to the whole sequence
  at once and hidden-to-hidden once per time step;
  :class:`~deepseek.privacy.GradSampleModule` adds up the per-step contributions of the
  shared hidden-to-hidden weights. ``from_lstm`` / ``from_gru`` copy a fused module's weights
  (PyTorch's gate orders: i, f, g, o and r, z, n).
* :class:`DPMultiheadAttention`: separate q/k/v projections and ``out_proj``;
  ``from_mha`` splits an ``nn.MultiheadAttention``'s ``in_proj_weight``.
"""

import math


from .. import _C
from .. import nn
from .._grad_mode import no_grad
from ..nn import functional as F

__all__ = ["DPLSTM", "DPGRU", "DPMultiheadAttention"]


class _RecurrentLayer(nn.Module):
    def __init__(self, input_size, hidden_size, bias, gates):
        super().__init__()
        self.ih = nn.Linear(input_size, gates * hidden_size, bias=bias)
        self.hh = nn.Linear(hidden_size, gates * hidden_size, bias=bias)
        self.hidden_size = hidden_size

    def forward(self, x, h, c=None):
        """x [B, T, in]; returns the outputs [B, T, H] and the last state(s)."""
        pre = self.ih(x)                                   # [B, T, gates*H], one matmul
        outs = []
        for t in range(x.shape[1]):
            h, c = self.cell(pre[:, t], h, c)
            outs.append(h)
        return _C.stack(outs, 1), h, c


class _LSTMLayer(_RecurrentLayer):
    def __init__(self, input_size, hidden_size, bias):
        super().__init__(input_size, hidden_size, bias, 4)

    def cell(self, gi, h, c):
        n = self.hidden_size
        gates = gi + self.hh(h)
        i = gates[:, :n].sigmoid()
        f = gates[:, n:2 * n].sigmoid()
        g = gates[:, 2 * n:3 * n].tanh()
        o = gates[:, 3 * n:].sigmoid()
        c = f * c + i * g
        return o * c.tanh(), c


class _GRULayer(_RecurrentLayer):
    def __init__(self, input_size, hidden_size, bias):
        super().__init__(input_size, hidden_size, bias, 3)

    def cell(self, gi, h, c):
        n = self.hidden_size
        gh = self.hh(h)
        r = (gi[:, :n] + gh[:, :n]).sigmoid()
        z = (gi[:, n:2 * n] + gh[:, n:2 * n]).sigmoid()
        cand = (gi[:, 2 * n:] + r * gh[:, 2 * n:]).tanh()
        return (1 - z) * cand + z * h, None


class _DPRNNBase(nn.Module):
    _layer = None
    _name = None

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False):
        super().__init__()
        if bidirectional:
            raise NotImplementedError(f"{self._name}: bidirectional=True is not supported")
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.bias = batch_first, float(dropout), bias
        self.layers = nn.ModuleList([type(self)._layer(input_size if k == 0 else hidden_size,
                                                       hidden_size, bias)
                                     for k in range(num_layers)])
        k = hidden_size ** -0.5             # PyTorch's RNN init: U(-1/sqrt(H), 1/sqrt(H))
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    @classmethod
    def _from_fused(cls, rnn):
        if rnn.bidirectional:
            raise NotImplementedError(f"{cls._name}: bidirectional modules are not supported")
        bias = getattr(rnn, "bias", True)
        m = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, bias=bias,
                batch_first=rnn.batch_first, dropout=rnn.dropout)
        m.to(rnn.weight_ih_l0.dtype)
        with no_grad():
            for k, layer in enumerate(m.layers):
                layer.ih.weight.copy_(getattr(rnn, f"weight_ih_l{k}"))
                layer.hh.weight.copy_(getattr(rnn, f"weight_hh_l{k}"))
                if bias:
                    layer.ih.bias.copy_(getattr(rnn, f"bias_ih_l{k}"))
                    layer.hh.bias.copy_(getattr(rnn, f"bias_hh_l{k}"))
        return m

    def _run(self, input, h0, c0):
        x = input if self.batch_first else input.transpose(0, 1)
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            if k > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, True)
            x, h, c = layer(x, h0[k], None if c0 is None else c0[k])
            hs.append(h)
            cs.append(c)
        out = x if self.batch_first else x.transpose(0, 1)
        return out, _C.stack(hs, 0), (None if c0 is None else _C.stack(cs, 0))

    def _zeros(self, input):
        b = input.shape[0 if self.batch_first else 1]
        return _C.zeros(self.num_layers, b, self.hidden_size, dtype=input.dtype)


class DPLSTM(_DPRNNBase):
    """An LSTM (``(output, (h_n, c_n))``, like ``nn.LSTM``) built from ``nn.Linear`` cells.
    Unidirectional; ``dropout`` between layers as ``nn.LSTM``."""

    _layer = _LSTMLayer
    _name = "DPLSTM"

    @classmethod
    def from_lstm(cls, lstm):
        """A DPLSTM computing the same function as ``lstm`` (an ``nn.LSTM``)."""
        return cls._from_fused(lstm)

    def forward(self, input, hx=None):
        h0, c0 = (self._zeros(input), self._zeros(input)) if hx is None else hx
        out, h, c = self._run(input, h0, c0)
        return out, (h, c)


class DPGRU(_DPRNNBase):
    """A GRU (``(output, h_n)``, like ``nn.GRU``) built from ``nn.Linear`` cells."""

    _layer = _GRULayer
    _name = "DPGRU"

    @classmethod
    def from_gru(cls, gru):
        """A DPGRU computing the same function as ``gru`` (an ``nn.GRU``)."""
        return cls._from_fused(gru)

    def forward(self, input, hx=None):
        h0 = self._zeros(input) if hx is None else hx
        out, h, _ = self._run(input, h0, None)
        return out, h


class DPMultiheadAttention(nn.Module):
    """``nn.MultiheadAttention`` (same call and returns: ``(output, weights)``) from four
    ``nn.Linear`` layers ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``. Supports
    ``attn_mask`` (2-D or 3-D, bool or additive), ``key_padding_mask``, ``is_causal``,
    attention dropout; not ``add_bias_kv``/``add_zero_attn``/``kdim``/``vdim``."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, batch_first=False):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @classmethod
    def from_mha(cls, mha):
        bias = mha.in_proj_bias is not None
        m = cls(mha.embed_dim, mha.num_heads, mha.dropout, bias=bias,
                batch_first=mha.batch_first)
        m.to(mha.in_proj_weight.dtype)
        e = mha.embed_dim
        with no_grad():
            for i, lin in enumerate((m.q_proj, m.k_proj, m.v_proj)):
                lin.weight.copy_(mha.in_proj_weight[i * e:(i + 1) * e])
                if bias:
                    lin.bias.copy_(mha.in_proj_bias[i * e:(i + 1) * e])
            m.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                m.out_proj.bias.copy_(mha.out_proj.bias)
        return m

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        if query.dim() != 3:
            raise ValueError("DPMultiheadAttention: batched [N, L, E] / [L, N, E] inputs only")
        if not self.batch_first:          # the per-sample rules need the batch first
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, lq, _ = query.shape
        ls = key.shape[1]
        nh, hd = self.num_heads, self.head_dim

        def heads(t, lin, length):
            return lin(t).reshape(n, length, nh, hd).transpose(1, 2)      # [N, h, L, d]

        q, k, v = heads(query, self.q_proj, lq), heads(key, self.k_proj, ls), \
            heads(value, self.v_proj, ls)
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))       # [N, h, Lq, Ls]
        if is_causal and attn_mask is None:
            attn_mask = _C.ones(lq, ls, dtype=_C.bool).triu(1)
        if attn_mask is not None:
            m = attn_mask
            if m.dtype == _C.bool:
                m = _C.zeros(*m.shape, dtype=scores.dtype).masked_fill(m, float("-inf"))
            m = m.reshape(1, 1, lq, ls) if m.dim() == 2 else m.reshape(n, nh, lq, ls)
            scores = scores + m
        if key_padding_mask is not None:
            kp = key_padding_mask
            if kp.dtype == _C.bool:
                kp = _C.zeros(*kp.shape, dtype=scores.dtype).masked_fill(kp, float("-inf"))
            scores = scores + kp.reshape(n, 1, 1, ls)
        w = scores.softmax(-1)
        wd = F.dropout(w, self.dropout, True) if self.dropout > 0 and self.training else w
        out = (wd @ v).transpose(1, 2).reshape(n, lq, self.embed_dim)
        out = self.out_proj(out)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        return out, (w.mean(1) if average_attn_weights else w)
