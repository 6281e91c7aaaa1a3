"""The layers of ``deepseek.nn`` with PyTorch's constructors, parameter names and default
initialisations. ``LSTM``/``GRU`` run the whole sequence in one Rust call (the fused LSTM
layer op); no Python loop runs per time step."""

import math

from .. import _C
from .._grad_mode import no_grad
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = [
    "Identity", "Linear", "NonDynamicallyQuantizableLinear", "Bilinear", "Embedding", "LSTM",
    "GRU", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d", "LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm1d", "BatchNorm2d",
    "Dropout", "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "LeakyReLU",
    "ELU", "Softplus", "Flatten", "Unflatten",
]


def _param(shape, requires_grad=True):
    return Parameter(_C.zeros(*shape), requires_grad)


def _pair(v):
    if isinstance(v, (tuple, list)):
        return tuple(v) if len(v) == 2 else (v[0], v[0])
    return (v, v)


class Identity(Module):
    """Returns its input unchanged (arguments to the constructor are ignored, like PyTorch's)."""
    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(Module):
    """``y = x W^T + b``; weight [out, in], both U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _param((out_features, in_features))
        if bias:
            self.bias = _param((out_features,))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()
        if dtype is not None:
            self.to(dtype)

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            k = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -k, k)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class NonDynamicallyQuantizableLinear(Linear):
    """A ``Linear`` (PyTorch's class of ``MultiheadAttention.out_proj``; the name keeps
    pickles and ``safe_globals`` lists of PyTorch programs working)."""


class Bilinear(Module):
    """``y = x1^T A x2 + b`` (weight [out, in1, in2])."""

    def __init__(self, in1_features, in2_features, out_features, bias=True):
        super().__init__()
        self.in1_features, self.in2_features, self.out_features = in1_features, in2_features, out_features
        k = 1.0 / math.sqrt(in1_features)
        self.weight = _param((out_features, in1_features, in2_features))
        init.uniform_(self.weight, -k, k)
        if bias:
            self.bias = _param((out_features,))
            init.uniform_(self.bias, -k, k)
        else:
            self.register_parameter("bias", None)

    def forward(self, x1, x2):
        y = _C.einsum("...i,oij,...j->...o", x1, self.weight, x2)
        return y + self.bias if self.bias is not None else y


def _check_device(device):
    if device is not None and str(device) != "cpu" and not str(device).startswith("cpu"):
        raise RuntimeError(f"device {device}: CUDA is not available (this build of deepseek has "
                           "only the CPU backend; deepseek.cuda.is_available() is False)")


def _check_indices(x, who):
    if not isinstance(x, _C.Tensor):
        raise TypeError(f"{who}: expected a deepseek.Tensor of integer indices, got "
                        f"{type(x).__name__}")
    if x.dtype not in (_C.int64, _C.int32, _C.uint8):
        raise TypeError(
            f"{who}: expected integer indices (deepseek.long / int64 or int32), got a tensor of "
            f"dtype {x.dtype}; token ids must be integers, e.g. deepseek.randint(0, "
            f"num_embeddings, shape) or x.long()")


class Embedding(Module):
    """A lookup table; N(0, 1) init, the ``padding_idx`` row zero and without gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: max_norm, scale_grad_by_freq and sparse are "
                                      "not supported")
        if padding_idx is not None:
            if padding_idx < 0:
                padding_idx += num_embeddings
            if not 0 <= padding_idx < num_embeddings:
                raise ValueError("Padding_idx must be within num_embeddings")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = _param((num_embeddings, embedding_dim), not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight, not _freeze)
        if dtype is not None:
            self.to(dtype)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0.0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, **kwargs):
        rows, cols = embeddings.shape
        return cls(rows, cols, padding_idx=padding_idx, _weight=embeddings.detach().clone(),
                   _freeze=freeze, **kwargs)

    def forward(self, x):
        _check_indices(x, "Embedding")
        return F.embedding(x, self.weight, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s


class _RNNBase(Module):
    _gates = 4
    _name = "RNN"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if proj_size:
            raise NotImplementedError(f"{self._name}: proj_size is not supported")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if num_layers < 1:
            raise ValueError(f"{self._name}: num_layers must be at least 1")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        dirs = 2 if bidirectional else 1
        names = []
        g = self._gates * hidden_size
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"l{layer}" + ("_reverse" if d == 1 else "")
                in_l = input_size if layer == 0 else hidden_size * dirs
                shapes = [(f"weight_ih_{sfx}", (g, in_l)), (f"weight_hh_{sfx}", (g, hidden_size))]
                if bias:
                    shapes += [(f"bias_ih_{sfx}", (g,)), (f"bias_hh_{sfx}", (g,))]
                for n, s in shapes:
                    setattr(self, n, _param(s))
                    names.append(n)
        self._flat_weights_names = names
        self.reset_parameters()
        if dtype is not None:
            self.to(dtype)

    def reset_parameters(self):
        k = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for n in self._flat_weights_names:
            init.uniform_(getattr(self, n), -k, k)

    @property
    def _flat_weights(self):
        return [getattr(self, n) for n in self._flat_weights_names]

    def all_weights(self):
        return self._flat_weights

    def flatten_parameters(self):
        """Kept for PyTorch compatibility (the weights are always used as they are)."""
        return None

    def _prepare(self, x):
        if not isinstance(x, _C.Tensor):
            raise TypeError(f"{self._name}: expected a deepseek.Tensor input, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{self._name}: expected a floating-point input (e.g. an Embedding's "
                            f"output), got {x.dtype}")
        if x.dim() not in (2, 3):
            raise ValueError(f"{self._name}: Expected input to be 2D or 3D, got {x.dim()}D "
                             f"tensor of shape {list(x.shape)}")
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(0 if self.batch_first else 1)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{self._name}: input.size(-1) must be equal to input_size. "
                             f"Expected {self.input_size}, got {x.shape[2]}")
        return x, unbatched

    def _state(self, h, x, unbatched, what):
        dirs = 2 if self.bidirectional else 1
        b = x.shape[0] if self.batch_first else x.shape[1]
        want = (self.num_layers * dirs, b, self.hidden_size)
        if h is None:
            return _C.zeros(*want, dtype=x.dtype)
        if unbatched:
            if h.dim() != 2:
                raise ValueError(f"{self._name}: for unbatched 2-D input, {what} should also "
                                 f"be 2-D but got {h.dim()}-D tensor")
            h = h.unsqueeze(1)
        if tuple(h.shape) != want:
            raise ValueError(f"{self._name}: Expected hidden size {want}, got {tuple(h.shape)} "
                             f"for {what}")
        return h

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class LSTM(_RNNBase):
    """Long short-term memory; returns ``(output, (h_n, c_n))``. Gates i, f, g, o; weights
    ``weight_ih_l{k}`` [4H, in], ``weight_hh_l{k}`` [4H, H], ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (``_reverse`` for the backward direction)."""

    _gates = 4
    _name = "LSTM"

    def forward(self, input, hx=None):
        x, unbatched = self._prepare(input)
        if hx is None:
            h0 = c0 = self._state(None, x, unbatched, "h_0")
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM: hx must be a tuple (h_0, c_0)")
            h0 = self._state(hx[0], x, unbatched, "h_0")
            c0 = self._state(hx[1], x, unbatched, "c_0")
        out, h, c = F._C_F.lstm(x, h0, c0, self._flat_weights, self.num_layers,
                                self.batch_first, self.bidirectional, self.dropout,
                                self.training)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            h, c = h.squeeze(1), c.squeeze(1)
        return out, (h, c)


class GRU(_RNNBase):
    """Gated recurrent unit; returns ``(output, h_n)``. Gates r, z, n."""

    _gates = 3
    _name = "GRU"

    def forward(self, input, hx=None):
        x, unbatched = self._prepare(input)
        h0 = self._state(hx, x, unbatched, "h_0")
        out, h = F._C_F.gru(x, h0, self._flat_weights, self.num_layers, self.batch_first,
                            self.bidirectional, self.dropout, self.training)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
            h = h.squeeze(1)
        return out, h


class _ConvNd(Module):
    def _init_conv(self, in_channels, out_channels, kernel, stride, padding, dilation, groups,
                   bias, padding_mode):
        if padding_mode != "zeros":
            raise NotImplementedError(f"padding_mode={padding_mode!r} is not supported (only 'zeros')")
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must "
                             f"be divisible by groups {groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.dilation = kernel, stride, dilation
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding == "valid":
                padding = tuple(0 for _ in kernel)
            elif padding == "same":
                if any(s != 1 for s in stride):
                    raise ValueError("padding='same' is not supported for strided convolutions")
                total = [d * (k - 1) for d, k in zip(dilation, kernel)]
                # An even effective kernel needs one more element on the right: keep the
                # string, which F.conv*d pads asymmetrically as PyTorch does.
                padding = "same" if any(t % 2 for t in total) else tuple(t // 2 for t in total)
            else:
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
        self.padding = padding
        self.weight = _param((out_channels, in_channels // groups) + tuple(kernel))
        if bias:
            self.bias = _param((out_channels,))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in:
                b = 1.0 / math.sqrt(fan_in)
                init.uniform_(self.bias, -b, b)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if isinstance(self.padding, str) or any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution (weight [out, in/groups, kh, kw])."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_device(device)
        pad = padding if isinstance(padding, str) else _pair(padding)
        self._init_conv(in_channels, out_channels, _pair(kernel_size), _pair(stride), pad,
                        _pair(dilation), groups, bias, padding_mode)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class Conv1d(_ConvNd):
    """1-D convolution (weight [out, in/groups, k])."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_device(device)
        one = lambda v: (v[0],) if isinstance(v, (tuple, list)) else (v,)  # noqa: E731
        pad = padding if isinstance(padding, str) else one(padding)
        self._init_conv(in_channels, out_channels, one(kernel_size), one(stride), pad,
                        one(dilation), groups, bias, padding_mode)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        pad = self.padding if isinstance(self.padding, str) else self.padding[0]
        return F.conv1d(x, self.weight, self.bias, self.stride[0], pad, self.dilation[0],
                        self.groups)


class MaxPool2d(Module):
    """``MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
    ceil_mode=False)``: 2-D max pooling.
    """
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """``AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None)``: 2-D average pooling.
    """
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """``AdaptiveAvgPool2d(output_size)``: average pooling to a fixed output size
    (``F.adaptive_avg_pool2d``).
    """
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """``AdaptiveMaxPool2d(output_size, return_indices=False)``: max pooling to a fixed output
    size.
    """
    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return F.adaptive_max_pool2d(x, self.output_size, self.return_indices)


def _shape(s):
    return (s,) if isinstance(s, int) else tuple(s)


class LayerNorm(Module):
    """``LayerNorm(normalized_shape, eps=1e-5, elementwise_affine=True, bias=True)``: layer
    normalisation over the trailing dims.
    """
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_C.ones(*self.normalized_shape))
            if bias:
                self.bias = Parameter(_C.zeros(*self.normalized_shape))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class RMSNorm(Module):
    """``RMSNorm(normalized_shape, eps=None, elementwise_affine=True)``: root-mean-square
    normalisation over the trailing dims.
    """
    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        _check_device(device)
        self.normalized_shape = _shape(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_C.ones(*self.normalized_shape))
        else:
            self.register_parameter("weight", None)
        if dtype is not None:
            self.to(dtype)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """``GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)``: group normalisation over
    channels.
    """
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(_C.ones(num_channels))
            self.bias = Parameter(_C.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class _BatchNorm(Module):
    _dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        _check_device(device)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(_C.ones(num_features))
            self.bias = Parameter(_C.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _C.zeros(num_features))
            self.register_buffer("running_var", _C.ones(num_features))
            self.register_buffer("num_batches_tracked", _C.tensor(0, dtype=_C.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        if dtype is not None:
            self.to(dtype)

    def reset_running_stats(self):
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    def forward(self, x):
        if x.dim() not in self._dims:
            raise ValueError(f"{type(self).__name__}: expected {' or '.join(map(str, self._dims))}D "
                             f"input (got {x.dim()}D input)")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or not self.track_running_stats
        rm = self.running_mean if (not self.training or self.track_running_stats) else None
        rv = self.running_var if (not self.training or self.track_running_stats) else None
        return F.batch_norm(x, rm, rv, self.weight, self.bias, use_batch, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over [N, C] or [N, C, L] with running statistics (buffers)."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over [N, C, H, W] with running statistics (buffers)."""

    _dims = (4,)


class Dropout(Module):
    """``Dropout(p=0.5, inplace=False)``: zero elements with probability ``p`` while training,
    scaling the rest by 1/(1-p); identity in eval mode.
    """
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


def _act(name, fn, doc, **defaults):
    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        vals = dict(defaults)
        for k, v in zip(defaults, args):
            vals[k] = v
        for k, v in kwargs.items():
            if k not in defaults:
                raise TypeError(f"{name}() got an unexpected keyword argument '{k}'")
            vals[k] = v
        for k, v in vals.items():
            setattr(self, k, v)

    def forward(self, x):
        return fn(x, **{k: getattr(self, k) for k in defaults if k != "inplace"})

    def extra_repr(self):
        return ", ".join(f"{k}={getattr(self, k)}" for k in defaults if k != "inplace")

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc})


ReLU = _act("ReLU", lambda x: F.relu(x), "max(x, 0).", inplace=False)
GELU = _act("GELU", lambda x, approximate: F.gelu(x, approximate=approximate),
            "GELU (approximate='none' or 'tanh').", approximate="none")
SiLU = _act("SiLU", lambda x: F.silu(x), "x * sigmoid(x).", inplace=False)
Tanh = _act("Tanh", lambda x: x.tanh(), "Hyperbolic tangent.")
Sigmoid = _act("Sigmoid", lambda x: x.sigmoid(), "Logistic sigmoid.")
Softmax = _act("Softmax", lambda x, dim: F.softmax(x, dim), "Softmax over `dim`.", dim=None)
LogSoftmax = _act("LogSoftmax", lambda x, dim: F.log_softmax(x, dim), "Log-softmax over `dim`.",
                  dim=None)
LeakyReLU = _act("LeakyReLU", lambda x, negative_slope: F.leaky_relu(x, negative_slope),
                 "Leaky ReLU.", negative_slope=0.01, inplace=False)
ELU = _act("ELU", lambda x, alpha: F.elu(x, alpha), "ELU.", alpha=1.0, inplace=False)
Softplus = _act("Softplus", lambda x, beta, threshold: F.softplus(x, beta, threshold),
                "Softplus.", beta=1.0, threshold=20.0)


class Flatten(Module):
    """``Flatten(start_dim=1, end_dim=-1)``: merge dims ``start_dim..=end_dim``."""
    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """``Unflatten(dim, unflattened_size)``: split ``dim`` into ``unflattened_size``."""
    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, list(unflattened_size)

    def forward(self, x):
        return x.unflatten(self.dim, self.unflattened_size)


# Moved to their own modules; importable from here as before (pickles name this module).
from .container import ModuleDict, ModuleList, ParameterList, Sequential  # noqa: E402,F401
from .attention import MultiheadAttention, _attn_mask, _mha  # noqa: E402,F401
from .transformer import TransformerEncoder, TransformerEncoderLayer  # noqa: E402,F401
