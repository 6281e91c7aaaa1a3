"""Further ``deepseek.nn`` layers: 3-D pooling and convolutions, max unpooling,
fractional max pooling, ``AdaptiveLogSoftmaxWithLoss``, ``CrossMapLRN2d`` and the
deprecated ``Container`` (over ``nn.functional``; PyTorch's constructors, parameter names
and initialisation)."""

from .. import _C
from . import functional as F
from .layers_extra import (AdaptiveAvgPool1d, AdaptiveMaxPool1d, _ConvTransposeNd,
                           _LPPoolNd, _check_device, _ntuple)
from .module import Module
from .parameter import Parameter

__all__ = ["MaxPool3d", "AvgPool3d", "AdaptiveAvgPool3d", "AdaptiveMaxPool3d", "LPPool3d",
           "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "Container", "Conv3d",
           "ConvTranspose3d", "FractionalMaxPool2d", "FractionalMaxPool3d",
           "AdaptiveLogSoftmaxWithLoss", "CrossMapLRN2d"]


class MaxPool3d(Module):
    """3-D max pooling over [N, C, D, H, W] (or [C, D, H, W])."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):
        return F.max_pool3d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool3d(Module):
    """3-D average pooling over [N, C, D, H, W] (or [C, D, H, W])."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool3d(AdaptiveAvgPool1d):
    """Adaptive average pooling of the last three dimensions to ``output_size``."""

    def forward(self, input):
        return F.adaptive_avg_pool3d(input, self.output_size)


class AdaptiveMaxPool3d(AdaptiveMaxPool1d):
    """Adaptive max pooling of the last three dimensions to ``output_size``."""

    def forward(self, input):
        return F.adaptive_max_pool3d(input, self.output_size, self.return_indices)


class LPPool3d(_LPPoolNd):
    """Power-average pooling over the last three dimensions."""

    def forward(self, input):
        return F.lp_pool3d(input, float(self.norm_type), self.kernel_size, self.stride,
                           self.ceil_mode)


class _MaxUnpoolNd(Module):
    _fn = None

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, input, indices, output_size=None):
        return type(self)._fn(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Inverse of ``MaxPool1d``: values back at their indices, zeros elsewhere."""

    _fn = staticmethod(F.max_unpool1d)


class MaxUnpool2d(_MaxUnpoolNd):
    """Inverse of ``MaxPool2d``: values back at their indices, zeros elsewhere."""

    _fn = staticmethod(F.max_unpool2d)


class MaxUnpool3d(_MaxUnpoolNd):
    """Inverse of ``MaxPool3d``: values back at their indices, zeros elsewhere."""

    _fn = staticmethod(F.max_unpool3d)


class Container(Module):
    """Deprecated PyTorch base class: a module holding the keyword-argument modules."""

    def __init__(self, **kwargs):
        super().__init__()
        import warnings

        warnings.warn("nn.Container is deprecated. All of it's functionality is now implemented "
                      "in nn.Module. Subclass that instead.", stacklevel=2)
        for key, value in kwargs.items():
            self.add_module(key, value)


class Conv3d(Module):
    """3-D convolution (weight [out, in/groups, kd, kh, kw]), PyTorch's initialisation."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__()
        _check_device(device)
        if padding_mode != "zeros":
            raise ValueError(f"padding_mode={padding_mode!r} is not supported (only 'zeros')")
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels {in_channels} and out_channels {out_channels} must "
                             f"be divisible by groups {groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _ntuple(kernel_size, 3), _ntuple(stride, 3)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, 3)
        self.dilation, self.groups, self.padding_mode = _ntuple(dilation, 3), groups, padding_mode
        self.weight = Parameter(_C.zeros(out_channels, in_channels // groups, *self.kernel_size))
        if bias:
            self.bias = Parameter(_C.zeros(out_channels))
        else:
            self.register_parameter("bias", None)
        _ConvTransposeNd.reset_parameters(self)
        if dtype is not None:
            self.to(dtype)

    def reset_parameters(self):
        _ConvTransposeNd.reset_parameters(self)

    def forward(self, input):
        return F.conv3d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution; weight [C_in, C_out / groups, kd, kh, kw]."""

    _n = 3

    def forward(self, input, output_size=None):
        op = self._output_padding(input, output_size)
        return F.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding, op,
                                  self.groups, self.dilation)




class _FractionalMaxPoolNd(Module):
    _fn = None

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                 _random_samples=None):
        super().__init__()
        self.kernel_size, self.output_size = kernel_size, output_size
        self.output_ratio, self.return_indices = output_ratio, return_indices
        self.register_buffer("_random_samples", _random_samples)
        if output_size is None and output_ratio is None:
            raise ValueError("FractionalMaxPool requires specifying either an output size, or "
                             "a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if output_ratio is not None:
            rs = (output_ratio,) if isinstance(output_ratio, (int, float)) else output_ratio
            if not all(0 < r < 1 for r in rs):
                raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):
        return type(self)._fn(input, self.kernel_size, self.output_size, self.output_ratio,
                              self.return_indices, _random_samples=self._random_samples)


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling (``F.fractional_max_pool2d``)."""

    _fn = staticmethod(F.fractional_max_pool2d)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling (``F.fractional_max_pool3d``)."""

    _fn = staticmethod(F.fractional_max_pool3d)




class AdaptiveLogSoftmaxWithLoss(Module):
    """Efficient softmax approximation (Grave et al.): a head over the frequent classes
    plus one entry per cluster, and per cluster a two-layer low-rank projection; forward
    returns ``(output, loss)`` with the target log-probabilities. Port of PyTorch's
    module (same parameters and names)."""

    def __init__(self, in_features, n_classes, cutoffs, div_value=4.0, head_bias=False,
                 device=None, dtype=None):
        super().__init__()
        from .layers import Linear, ModuleList, Sequential

        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted "
                             "in an increasing order, where each value is between 1 and "
                             "n_classes-1")
        self.in_features, self.n_classes = in_features, n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, dtype=dtype)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, dtype=dtype),
                                        Linear(hsz, osz, bias=False, dtype=dtype)))

    def reset_parameters(self):
        self.head.reset_parameters()
        for seq in self.tail:
            for lin in seq:
                lin.reset_parameters()

    def forward(self, input_, target_):
        import collections

        import numpy as np

        if target_.dim() == 1:
            if input_.shape[0] != target_.shape[0]:
                raise ValueError("Input and target should have the same size in the batch "
                                 "dimension.")
            if input_.dim() != 2:
                raise ValueError(f"1D target tensor expects 2D input tensors, but found inputs "
                                 f"with size {tuple(input_.shape)}")
        elif target_.dim() == 0:
            if input_.dim() != 1:
                raise ValueError(f"0D target tensor expects 1D input tensors, but found inputs "
                                 f"with size {tuple(input_.shape)}")
        else:
            raise ValueError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.dim() > 0
        x = input_ if batched else input_.unsqueeze(0)
        target = target_ if batched else target_.unsqueeze(0)
        t = target.detach().numpy().astype(np.int64)
        if t.size and (t.min() < 0 or t.max() >= self.n_classes):
            raise ValueError(f"Target values should be in [0, {self.n_classes - 1}], but values "
                             f"in range [{t.min()}, {t.max()}] were found. ")
        b = t.shape[0]
        output = _C.zeros(b, dtype=x.dtype)
        gather = t.copy()
        bounds = [0] + self.cutoffs
        for i in range(1, len(bounds) - 1):
            lo, hi = bounds[i], bounds[i + 1]
            rows = np.nonzero((t >= lo) & (t < hi))[0]
            if rows.size == 0:
                continue
            ri = _C.tensor(rows.astype(np.int64))
            cl = F.log_softmax(self.tail[i - 1](x.index_select(0, ri)), 1)
            rel = _C.tensor((t[rows] - lo).astype(np.int64)).unsqueeze(1)
            output = output.index_copy(0, ri, cl.gather(1, rel).squeeze(1))
            gather[rows] = self.shortlist_size + i - 1
        head_lp = F.log_softmax(self.head(x), 1)
        output = output + head_lp.gather(1, _C.tensor(gather).unsqueeze(1)).squeeze(1)
        loss = (-output).mean()
        if not batched:
            output = output.squeeze(0)
        return collections.namedtuple("_ASMoutput", ["output", "loss"])(output, loss)

    def _full_log_prob(self, input, head_output):
        head_lp = F.log_softmax(head_output, 1)
        parts = [head_lp.narrow(1, 0, self.shortlist_size)]
        for i in range(self.n_clusters):
            cl = F.log_softmax(self.tail[i](input), 1)
            parts.append(cl + head_lp.narrow(1, self.shortlist_size + i, 1))
        return _C.cat(parts, 1)

    def log_prob(self, input):
        """Log-probabilities of every class: [N, n_classes]."""
        return self._full_log_prob(input, self.head(input))

    def predict(self, input):
        """The most likely class of each row."""
        return self.log_prob(input).argmax(1)




def _cross_map_window(channels, size):
    """The channel window of PyTorch's CrossMapLRN2d, replayed from its running-sum
    recurrence (``m[c, j] = 1`` when channel ``j`` counts for channel ``c``)."""
    import numpy as np

    pre_pad = int((size - 1) / 2 + 1)
    m = np.zeros((channels, channels))
    m[0, :min(pre_pad, channels)] = 1
    for c in range(1, channels):
        m[c] = m[c - 1]
        if c < channels - pre_pad + 1:
            m[c, c + pre_pad - 1] += 1
        if c > pre_pad:
            m[c, c - pre_pad] -= 1
    return m


class CrossMapLRN2d(Module):
    """Local response normalisation across channels of [N, C, H, W] inputs, with the
    legacy (Lua Torch) channel window of PyTorch's ``CrossMapLRN2d``:
    ``x * (k + alpha / size * sum_window x^2) ^ -beta``."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        if input.dim() != 4:
            raise ValueError(f"CrossMapLRN2d: Expected input to be 4D, got {input.dim()}D "
                             f"instead.")
        m = _C.tensor(_cross_map_window(input.shape[1], self.size)).to(input.dtype)
        sq = (input * input).permute(0, 2, 3, 1)
        scale = sq.matmul(m.t()).permute(0, 3, 1, 2) * (self.alpha / self.size) + self.k
        return input * scale ** (-self.beta)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


