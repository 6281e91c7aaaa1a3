"""``nn.RNN`` (Elman network, tanh or ReLU) and the single-step cells ``RNNCell``,
``LSTMCell``, ``GRUCell``, with PyTorch's constructors, parameter names, gate orders and
initialisation (uniform in +-1/sqrt(hidden_size)). They are compositions of existing ops:
the input projection of every time step is one matmul; each step adds the recurrent matmul
and the activation, so autograd sees ordinary ops."""

import math

from .. import _C
from . import functional as F
from . import init
from .layers import _RNNBase, _check_device, _param
from .module import Module

__all__ = ["RNN", "RNNCell", "LSTMCell", "GRUCell"]


def _act(nonlinearity, who):
    if nonlinearity == "tanh":
        return _C.Tensor.tanh
    if nonlinearity == "relu":
        return F.relu
    raise ValueError(f"{who}: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                     "'relu'.")


class RNN(_RNNBase):
    """Elman RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` with ``act`` tanh
    (default) or ReLU; returns ``(output, h_n)``. Multi-layer, bidirectional, ``batch_first``
    and dropout between layers as in PyTorch; weights ``weight_ih_l{k}`` [H, in],
    ``weight_hh_l{k}`` [H, H], ``bias_ih_l{k}``, ``bias_hh_l{k}`` (``_reverse`` for the
    backward direction)."""

    _gates = 1
    _name = "RNN"

    def __init__(self, *args, nonlinearity="tanh", **kwargs):
        if len(args) > 2 and isinstance(args[2], int) and len(args) > 3 and isinstance(
                args[3], str):
            # PyTorch's positional order: input_size, hidden_size, num_layers, nonlinearity
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        self._act = _act(nonlinearity, "RNN")
        super().__init__(*args, **kwargs)
        self.nonlinearity = nonlinearity

    def _layer(self, x, h, layer, reverse):
        sfx = f"l{layer}" + ("_reverse" if reverse else "")
        w_ih, w_hh = getattr(self, f"weight_ih_{sfx}"), getattr(self, f"weight_hh_{sfx}")
        b_ih = getattr(self, f"bias_ih_{sfx}") if self.bias else None
        b_hh = getattr(self, f"bias_hh_{sfx}") if self.bias else None
        xw = F.linear(x, w_ih, b_ih)  # all time steps at once: [T, B, H]
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outs = []
        for t in steps:
            h = self._act(xw[t] + F.linear(h, w_hh, b_hh))
            outs.append(h)
        if reverse:
            outs.reverse()
        return _C.stack(outs), h

    def forward(self, input, hx=None):
        x, unbatched = self._prepare(input)
        h0 = self._state(hx, x, unbatched, "h_0")
        if self.batch_first:
            x = x.transpose(0, 1)
        dirs = 2 if self.bidirectional else 1
        hs = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                o, h = self._layer(x, h0[layer * dirs + d], layer, d == 1)
                outs.append(o)
                hs.append(h)
            x = outs[0] if dirs == 1 else _C.cat(outs, 2)
            if self.dropout and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, self.training)
        out, h_n = x, _C.stack(hs)
        if self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
        return out, h_n

    def extra_repr(self):
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class _RNNCellBase(Module):
    _gates = 1
    _name = "RNNCell"

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = self._gates * hidden_size
        self.weight_ih = _param((g, input_size))
        self.weight_hh = _param((g, hidden_size))
        if bias:
            self.bias_ih = _param((g,))
            self.bias_hh = _param((g,))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()
        if dtype is not None:
            self.to(dtype)

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _input(self, x):
        if not isinstance(x, _C.Tensor):
            raise TypeError(f"{self._name}: expected a deepseek.Tensor input, got "
                            f"{type(x).__name__}")
        if x.dim() not in (1, 2):
            raise ValueError(f"{self._name}: Expected input to be 1D or 2D, got {x.dim()}D "
                             "instead")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{self._name}: input has inconsistent input_size: got "
                             f"{x.shape[-1]} expected {self.input_size}")
        unbatched = x.dim() == 1
        return (x.unsqueeze(0) if unbatched else x), unbatched

    def _hidden(self, h, x, unbatched, what):
        if h is None:
            return _C.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)
        if unbatched:
            h = h.unsqueeze(0)
        if tuple(h.shape) != (x.shape[0], self.hidden_size):
            raise ValueError(f"{self._name}: {what} has shape {tuple(h.shape)}, expected "
                             f"{(x.shape[0], self.hidden_size)}")
        return h

    def _gates_of(self, x, h):
        return F.linear(x, self.weight_ih, self.bias_ih), F.linear(h, self.weight_hh,
                                                                   self.bias_hh)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(_RNNCellBase):
    """One Elman step: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (tanh or ReLU)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        self._act = _act(nonlinearity, "RNNCell")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, unbatched = self._input(input)
        h = self._hidden(hx, x, unbatched, "hx")
        gi, gh = self._gates_of(x, h)
        out = self._act(gi + gh)
        return out.squeeze(0) if unbatched else out


class LSTMCell(_RNNCellBase):
    """One LSTM step; returns ``(h', c')``. Gates i, f, g, o (PyTorch's order) in
    ``weight_ih`` [4H, in] and ``weight_hh`` [4H, H]."""

    _gates = 4
    _name = "LSTMCell"

    def forward(self, input, hx=None):
        x, unbatched = self._input(input)
        if hx is None:
            h = c = self._hidden(None, x, unbatched, "hx")
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTMCell: hx must be a tuple (h_0, c_0)")
            h = self._hidden(hx[0], x, unbatched, "h_0")
            c = self._hidden(hx[1], x, unbatched, "c_0")
        gi, gh = self._gates_of(x, h)
        g = gi + gh
        H = self.hidden_size
        i, f = g[:, :H].sigmoid(), g[:, H:2 * H].sigmoid()
        gg, o = g[:, 2 * H:3 * H].tanh(), g[:, 3 * H:].sigmoid()
        c2 = f * c + i * gg
        h2 = o * c2.tanh()
        if unbatched:
            return h2.squeeze(0), c2.squeeze(0)
        return h2, c2


class GRUCell(_RNNCellBase):
    """One GRU step: ``r, z = sigmoid(...)``, ``n = tanh(x W_in + b_in + r * (h W_hn +
    b_hn))``, ``h' = (1 - z) * n + z * h``. Gates r, z, n (PyTorch's order)."""

    _gates = 3
    _name = "GRUCell"

    def forward(self, input, hx=None):
        x, unbatched = self._input(input)
        h = self._hidden(hx, x, unbatched, "hx")
        gi, gh = self._gates_of(x, h)
        H = self.hidden_size
        r = (gi[:, :H] + gh[:, :H]).sigmoid()
        z = (gi[:, H:2 * H] + gh[:, H:2 * H]).sigmoid()
        n = (gi[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
        out = (1 - z) * n + z * h
        return out.squeeze(0) if unbatched else out
