"""Layers rewritten so that per-sample gradients come from the ``nn.Linear`` rule.

``nn.LSTM`` runs as one fused op, so no hook sees its per-step inputs; :class:`DPLSTM` (the
counterpart of Opacus' ``DPLSTM``) computes the same function with two ``nn.Linear`` layers
per layer -- input-to-hidden applied to the whole sequence at once, hidden-to-hidden once per
time step -- and :class:`~deepseek.privacy.GradSampleModule` adds up the per-step
contributions of the shared hidden-to-hidden weights. ``DPLSTM.from_lstm(lstm)`` copies an
``nn.LSTM``'s weights (PyTorch's gate order i, f, g, o).
"""

from .. import _C
from .. import nn

__all__ = ["DPLSTM"]


class _LSTMLayer(nn.Module):
    def __init__(self, input_size, hidden_size, bias):
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden_size, bias=bias)
        self.hh = nn.Linear(hidden_size, 4 * hidden_size, bias=bias)
        self.hidden_size = hidden_size

    def forward(self, x, h, c):
        """x [B, T, in]; returns the outputs [B, T, H] and the last (h, c)."""
        pre = self.ih(x)                                   # [B, T, 4H], one matmul
        hsz = self.hidden_size
        outs = []
        for t in range(x.shape[1]):
            gates = pre[:, t] + self.hh(h)
            i = gates[:, :hsz].sigmoid()
            f = gates[:, hsz:2 * hsz].sigmoid()
            g = gates[:, 2 * hsz:3 * hsz].tanh()
            o = gates[:, 3 * hsz:].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            outs.append(h)
        return _C.stack(outs, 1), h, c


class DPLSTM(nn.Module):
    """An LSTM (``(output, (h_n, c_n))``, like ``nn.LSTM``) built from ``nn.Linear`` cells.
    Unidirectional; ``dropout`` between layers as ``nn.LSTM``."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False):
        super().__init__()
        if bidirectional:
            raise NotImplementedError("DPLSTM: bidirectional=True is not supported")
        if num_layers < 1:
            raise ValueError("num_layers must be >= 1")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout, self.bias = batch_first, float(dropout), bias
        self.layers = nn.ModuleList([_LSTMLayer(input_size if k == 0 else hidden_size,
                                                hidden_size, bias) for k in range(num_layers)])
        k = hidden_size ** -0.5                   # nn.LSTM's init: U(-1/sqrt(H), 1/sqrt(H))
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)

    @classmethod
    def from_lstm(cls, lstm):
        """A DPLSTM computing the same function as ``lstm`` (an ``nn.LSTM``)."""
        if lstm.bidirectional:
            raise NotImplementedError("DPLSTM.from_lstm: bidirectional LSTMs are not supported")
        bias = getattr(lstm, "bias", True)
        m = cls(lstm.input_size, lstm.hidden_size, lstm.num_layers, bias=bias,
                batch_first=lstm.batch_first, dropout=lstm.dropout)
        m.to(lstm.weight_ih_l0.dtype)
        from .._grad_mode import no_grad
        with no_grad():
            for k, layer in enumerate(m.layers):
                layer.ih.weight.copy_(getattr(lstm, f"weight_ih_l{k}"))
                layer.hh.weight.copy_(getattr(lstm, f"weight_hh_l{k}"))
                if bias:
                    layer.ih.bias.copy_(getattr(lstm, f"bias_ih_l{k}"))
                    layer.hh.bias.copy_(getattr(lstm, f"bias_hh_l{k}"))
        return m

    def forward(self, input, hx=None):
        x = input if self.batch_first else input.transpose(0, 1)
        b = x.shape[0]
        if hx is None:
            h0 = _C.zeros(self.num_layers, b, self.hidden_size, dtype=x.dtype)
            c0 = h0
        else:
            h0, c0 = hx
        hs, cs = [], []
        for k, layer in enumerate(self.layers):
            if k > 0 and self.dropout > 0 and self.training:
                from ..nn import functional as F
                x = F.dropout(x, self.dropout, True)
            x, h, c = layer(x, h0[k], c0[k])
            hs.append(h)
            cs.append(c)
        out = x if self.batch_first else x.transpose(0, 1)
        return out, (_C.stack(hs, 0), _C.stack(cs, 0))
