"""Activation functions of ``deepseek.nn.functional`` written as compositions of the core's
tensor ops (so autograd, lazy fusion and every backend apply unchanged), with PyTorch's
signatures, defaults and in-place (``inplace=True`` / trailing ``_``) variants."""

from .. import _C
from .._C import functional as _C_F

__all__ = ["relu6", "hardtanh", "hardtanh_", "relu_", "elu_", "leaky_relu_", "hardsigmoid",
           "hardswish", "selu", "selu_", "celu", "celu_", "softshrink", "hardshrink",
           "tanhshrink", "threshold", "threshold_", "prelu", "rrelu", "rrelu_", "logsigmoid",
           "softsign", "mish", "glu", "gumbel_softmax", "relu", "elu", "leaky_relu",
           "silu"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _inplace(x, y, inplace, name):
    if inplace:
        return _C._assign_inplace(x, y, name)
    return y


def _zero_like(x):
    return _C.zeros_like(x)


# The core's relu/elu/leaky_relu/silu accept ``inplace`` but return a new tensor; these
# wrappers make ``inplace=True`` (and the ``_`` variants) update the input, as PyTorch does.
def relu(input, inplace=False):
    """``max(x, 0)``."""
    return _inplace(input, _C_F.relu(input), inplace, "relu_")


def relu_(input):
    """In-place ``relu``."""
    return relu(input, inplace=True)


def elu(input, alpha=1.0, inplace=False):
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``."""
    return _inplace(input, _C_F.elu(input, alpha), inplace, "elu_")


def elu_(input, alpha=1.0):
    """In-place ``elu``."""
    return elu(input, alpha, inplace=True)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x`` if ``x >= 0`` else ``negative_slope * x``."""
    return _inplace(input, _C_F.leaky_relu(input, negative_slope), inplace, "leaky_relu_")


def leaky_relu_(input, negative_slope=0.01):
    """In-place ``leaky_relu``."""
    return leaky_relu(input, negative_slope, inplace=True)


def silu(input, inplace=False):
    """``x * sigmoid(x)``."""
    return _inplace(input, _C_F.silu(input), inplace, "silu_")


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``clamp(x, min_val, max_val)``."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _inplace(input, input.clamp(min_val, max_val), inplace, "hardtanh_")


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """In-place ``hardtanh``."""
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input, inplace=False):
    """``min(max(0, x), 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``."""
    return _inplace(input, (input + 3.0).clamp(0.0, 6.0) / 6.0, inplace, "hardsigmoid_")


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6``."""
    return _inplace(input, input * (input + 3.0).clamp(0.0, 6.0) / 6.0, inplace, "hardswish_")


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with the self-normalising constants
    (alpha = 1.6733, scale = 1.0507)."""
    return _inplace(input, _C_F.elu(input, _SELU_ALPHA) * _SELU_SCALE, inplace, "selu_")


def selu_(input):
    """In-place ``selu``."""
    return selu(input, inplace=True)


def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be zero (ZeroDivisionError)")
    y = input.clamp(min=0.0) + ((input / alpha).clamp(max=0.0).expm1() * alpha)
    return _inplace(input, y, inplace, "celu_")


def celu_(input, alpha=1.0):
    """In-place ``celu``."""
    return celu(input, alpha, inplace=True)


def softshrink(input, lambd=0.5):
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between."""
    if lambd < 0:
        raise ValueError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    return input - input.clamp(-lambd, lambd)


def hardshrink(input, lambd=0.5):
    """``x`` where ``|x| > lambd``, else 0."""
    return _C.where(input.abs() > lambd, input, _zero_like(input))


def tanhshrink(input):
    """``x - tanh(x)``."""
    return input - input.tanh()


def threshold(input, threshold, value, inplace=False):
    """``x`` where ``x > threshold``, else ``value``."""
    y = _C.where(input > threshold, input, _zero_like(input) + value)
    return _inplace(input, y, inplace, "threshold_")


def threshold_(input, threshold, value):
    """In-place ``threshold``."""
    return globals()["threshold"](input, threshold, value, inplace=True)


def prelu(input, weight):
    """``max(0, x) + weight * min(0, x)``; ``weight`` has 1 element or one per channel
    (dimension 1 of ``input``)."""
    if weight.dim() > 1:
        raise ValueError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                         f"ndim = {weight.dim()}")
    n = weight.numel()
    if n != 1:
        c = input.shape[1] if input.dim() >= 2 else (input.shape[0] if input.dim() == 1 else 1)
        if n != c:
            raise ValueError(f"prelu: Mismatch of parameter numbers and input channel size. "
                             f"Found parameter numbers = {n} and channel size = {c}.")
        if input.dim() >= 2:
            weight = weight.reshape([n] + [1] * (input.dim() - 2))
    else:
        weight = weight.reshape([])
    return input.clamp(min=0.0) + weight * input.clamp(max=0.0)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """Randomised leaky ReLU: in training the negative slope of each element is drawn from
    U(lower, upper); in evaluation it is ``(lower + upper) / 2``."""
    if lower > upper:
        raise ValueError(f"Lower bound should be less than or equal to the upper bound, "
                         f"but got lower={lower} and upper={upper}")
    if training:
        a = _C.rand(*input.shape, dtype=input.dtype) * (upper - lower) + lower
        y = _C.where(input >= 0, input, input * a)
    else:
        y = _C_F.leaky_relu(input, (lower + upper) / 2)
    return _inplace(input, y, inplace, "rrelu_")


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False):
    """In-place ``rrelu``."""
    return rrelu(input, lower, upper, training, inplace=True)


def logsigmoid(input):
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -_C_F.softplus(-input, 1.0, 20.0)


def softsign(input):
    """``x / (1 + |x|)``."""
    return input / (input.abs() + 1)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``."""
    return _inplace(input, input * _C_F.softplus(input, 1.0, 20.0).tanh(), inplace, "mish_")


def glu(input, dim=-1):
    """Gated linear unit: ``a * sigmoid(b)`` with ``a, b`` the halves of ``input`` along
    ``dim``."""
    if input.dim() == 0:
        raise ValueError("glu does not support scalars because halving size must be even")
    n = input.shape[dim]
    if n % 2:
        raise ValueError(f"Halving dimension must be even, but dimension "
                         f"{dim % input.dim()} is size {n}")
    a, b = input.chunk(2, dim)
    return a * b.sigmoid()


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """Samples from the Gumbel-softmax distribution: ``softmax((logits + g) / tau)`` with
    ``g = -log(Exp(1))`` noise; ``hard=True`` returns one-hot vectors whose gradient is the
    soft sample's (straight-through)."""
    u = _C.rand(*logits.shape, dtype=logits.dtype).clamp(min=1e-20)
    gumbels = -((-u.log()).log())
    y = _C_F.softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y
    idx = y.argmax(dim, keepdim=True)
    onehot = _C.zeros_like(y).scatter(dim, idx, 1.0)
    return onehot - y.detach() + y
