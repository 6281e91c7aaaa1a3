"""``deepseek.nn.quantized.dynamic``: dynamically quantized layers
(``torch.ao.nn.quantized.dynamic``), made by ``deepseek.quantization.quantize_dynamic``."""

import copy

from ... import _C
from ..module import Module
from . import _state

__all__ = ["Linear", "LSTM"]


def _weight_per_channel(qconfig):
    """Whether ``qconfig``'s weight observer is per channel (False without a qconfig)."""
    from ...quantization._types import is_per_channel
    w = getattr(qconfig, "weight", None)
    if w is None:
        return False
    obs = w() if callable(w) else w
    obs = getattr(obs, "activation_post_process", obs)
    return is_per_channel(getattr(obs, "qscheme", None))


class Linear(Module):
    """``y = x W^T + b`` with int8 weights (symmetric, per tensor or per output channel) and
    u8 activations quantized on each call with one scale and zero point for the whole input,
    as PyTorch's ``torch.ao.nn.quantized.dynamic.Linear`` on the x86/fbgemm engine. The
    product runs in exact int32 arithmetic on AVX-512 VNNI / AVX-VNNI / AVX2 kernels picked at
    run time (``deepseek.quantization.int8_isa()``). Inference only: no gradients.

    ``weight()`` returns the *dequantized* float weight (PyTorch returns a quantized tensor);
    ``weight_int_repr()`` and ``weight_scale()`` give the integers and scales. The packed
    weights are in ``state_dict()`` under PyTorch's keys (``scale``, ``zero_point``,
    ``_packed_params.*``; see ``deepseek.nn.quantized._state``), and ``load_state_dict``
    into a freshly quantized model of the same architecture restores them exactly."""

    _FLOAT_MODULE = None  # set below (nn.Linear), avoiding an import cycle

    def __init__(self, in_features, out_features, bias_=True, dtype=None, *, per_channel=False,
                 reduce_range=True, _packed=None):
        super().__init__()
        if _packed is None:
            from ..layers import Linear as _FloatLinear
            f = _FloatLinear(in_features, out_features, bias=bias_)
            _packed = _C.DynamicQuantLinear(f.weight, f.bias, per_channel, reduce_range)
        self.__dict__["_packed"] = _packed
        self.in_features = _packed.in_features
        self.out_features = _packed.out_features

    @classmethod
    def from_float(cls, mod, qconfig=None, use_precomputed_fake_quant=False):
        """The quantized copy of a float ``nn.Linear`` (``qconfig`` picks per-tensor or
        per-channel weight scales; default per tensor, as PyTorch's
        ``default_dynamic_qconfig``)."""
        from ..layers import Linear as _FloatLinear
        if not isinstance(mod, _FloatLinear):
            raise TypeError(f"nn.quantized.dynamic.Linear.from_float only works for nn.Linear, "
                            f"got {type(mod).__name__}")
        if qconfig is None:
            qconfig = getattr(mod, "qconfig", None)
        per_channel = _weight_per_channel(qconfig)
        reduce_range = True  # fbgemm's dynamic Linear always keeps activations to 7 bits
        packed = _C.DynamicQuantLinear(mod.weight, mod.bias, per_channel, reduce_range)
        return cls(mod.in_features, mod.out_features, _packed=packed)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # PyTorch's dynamic Linear keeps an (unused) output scale 1.0 and zero point 0
        _state.save_qparams(destination, prefix, 1.0, 0)
        _state.save_weight(destination, prefix + "_packed_params.", self._packed)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        def load():
            self.__dict__["_packed"] = _state.load_dynamic(
                state_dict, prefix + "_packed_params.", self._packed)
        _state.guarded(load, self, state_dict, prefix, error_msgs)

    def forward(self, x):
        return self._packed.forward(x)

    def __deepcopy__(self, memo):
        # the packed weights are immutable, so copies share them
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = v if k == "_packed" else copy.deepcopy(v, memo)
        return new

    def weight(self):
        """The dequantized f32 weight ``scale * q``."""
        return self._packed.dequantized_weight()

    def bias(self):
        return self._packed.bias()

    def weight_int_repr(self):
        """The int8 weight values (as an int32 tensor)."""
        return self._packed.weight_int_repr()

    def weight_scale(self):
        """The weight scales: 1 (per tensor) or ``out_features`` (per channel)."""
        return self._packed.weight_scales()

    @property
    def qscheme(self):
        return "per_channel_symmetric" if self._packed.per_channel else "per_tensor_symmetric"

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"dtype=deepseek.qint8, qscheme={self.qscheme}, kernel={self._packed.isa}")


class LSTM(Module):
    """Dynamically quantized LSTM (``torch.ao.nn.quantized.dynamic.LSTM``): every
    ``weight_ih_l{k}`` / ``weight_hh_l{k}`` is int8 (per tensor, or per gate row with
    ``per_channel_dynamic_qconfig``); as PyTorch does on the CPU, each layer's input
    projection is computed for the whole sequence at once (one activation scale for the
    sequence) and the hidden projection at each step (one scale per step), both on the int8
    kernels; biases, gates and cell state stay in f32. Returns ``(output, (h_n, c_n))``.
    Inference only."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, _cells=None):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, dropout
        self.bidirectional = bidirectional
        if _cells is None:
            raise ValueError("nn.quantized.dynamic.LSTM is made with LSTM.from_float(float_lstm) "
                             "or quantize_dynamic(model, {nn.LSTM})")
        self.__dict__["_cells"] = _cells  # [(packed_ih, packed_hh)] per layer and direction

    def _cell_prefixes(self, prefix):
        return [(f"{prefix}_all_weight_values.{i}.param.ih.",
                 f"{prefix}_all_weight_values.{i}.param.hh.") for i in range(len(self._cells))]

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        """Per layer and direction ``i``: ``_all_weight_values.<i>.param.{ih,hh}.weight``
        (int8 bytes), ``.weight_scale`` and ``.bias`` (PyTorch's key prefix; see
        ``deepseek.nn.quantized._state``)."""
        for cell, pres in zip(self._cells, self._cell_prefixes(prefix)):
            for packed, pre in zip(cell, pres):
                _state.save_weight(destination, pre, packed)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        def load():
            cells = [tuple(_state.load_dynamic(state_dict, pre, packed)
                           for packed, pre in zip(cell, pres))
                     for cell, pres in zip(self._cells, self._cell_prefixes(prefix))]
            self.__dict__["_cells"] = cells
        _state.guarded(load, self, state_dict, prefix, error_msgs)

    @classmethod
    def from_float(cls, mod, qconfig=None, use_precomputed_fake_quant=False):
        from ..layers import LSTM as _FloatLSTM
        if not isinstance(mod, _FloatLSTM):
            raise TypeError(f"nn.quantized.dynamic.LSTM.from_float only works for nn.LSTM, got "
                            f"{type(mod).__name__}")
        if getattr(mod, "proj_size", 0):
            raise ValueError("quantize_dynamic(LSTM): proj_size is not supported")
        if qconfig is None:
            qconfig = getattr(mod, "qconfig", None)
        per_channel = _weight_per_channel(qconfig)
        cells = []
        for layer in range(mod.num_layers):
            for sfx in ([""] + (["_reverse"] if mod.bidirectional else [])):
                packs = []
                for kind in ("ih", "hh"):
                    name = f"weight_{kind}_l{layer}{sfx}"
                    w = getattr(mod, name)
                    b = getattr(mod, f"bias_{kind}_l{layer}{sfx}") if mod.bias else None
                    try:
                        packs.append(_C.DynamicQuantLinear(w, b, per_channel, True))
                    except (ValueError, RuntimeError) as e:
                        raise type(e)(f"{name}: {e}") from None
                cells.append(tuple(packs))
        return cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias, mod.batch_first,
                   mod.dropout, mod.bidirectional, _cells=cells)

    def __deepcopy__(self, memo):
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = v if k == "_cells" else copy.deepcopy(v, memo)
        return new

    def _direction(self, x, h, c, cell, reverse):
        import deepseek as ds
        ih, hh = cell
        gx = ih.forward(x)  # [T, B, 4H]: the whole sequence at once
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outs = [None] * x.shape[0]
        for t in steps:
            g = gx[t] + hh.forward(h)
            i, f, gg, o = g.chunk(4, -1)
            c = ds.sigmoid(f) * c + ds.sigmoid(i) * ds.tanh(gg)
            h = ds.sigmoid(o) * ds.tanh(c)
            outs[t] = h
        return ds.stack(outs, 0), h, c

    def forward(self, input, hx=None):
        import deepseek as ds
        if not isinstance(input, _C.Tensor) or not input.is_floating_point():
            raise TypeError("quantized dynamic LSTM: expected a floating-point deepseek.Tensor")
        if input.dim() not in (2, 3):
            raise ValueError(f"quantized dynamic LSTM: expected 2-D or 3-D input, got "
                             f"{input.dim()}-D")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first
                                                  else input)
        if x.shape[2] != self.input_size:
            raise ValueError(f"quantized dynamic LSTM: input.size(-1) must be {self.input_size}, "
                             f"got {x.shape[2]}")
        dirs = 2 if self.bidirectional else 1
        want = (self.num_layers * dirs, x.shape[1], self.hidden_size)
        if hx is None:
            h0 = c0 = ds.zeros(*want)
        else:
            h0, c0 = hx
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
            if tuple(h0.shape) != want or tuple(c0.shape) != want:
                raise ValueError(f"quantized dynamic LSTM: expected hidden size {want}, got "
                                 f"{tuple(h0.shape)} and {tuple(c0.shape)}")
        hs, cs = [], []
        layer_in = x.float()
        with ds.no_grad():
            for layer in range(self.num_layers):
                outs = []
                for d in range(dirs):
                    k = layer * dirs + d
                    out, h, c = self._direction(layer_in, h0[k], c0[k], self._cells[k], d == 1)
                    outs.append(out)
                    hs.append(h)
                    cs.append(c)
                layer_in = outs[0] if dirs == 1 else ds.cat(outs, -1)
        out = layer_in
        h_n, c_n = ds.stack(hs, 0), ds.stack(cs, 0)
        if unbatched:
            return out.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, (h_n, c_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s + ", dtype=deepseek.qint8"
