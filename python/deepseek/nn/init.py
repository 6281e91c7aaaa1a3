"""``deepseek.nn.init``: in-place initialisers with PyTorch's formulas."""

import math

from .. import _C
from .._grad_mode import no_grad


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "sigmoid", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(t):
    if t.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    rf = 1
    for s in t.shape[2:]:
        rf *= s
    return t.shape[1] * rf, t.shape[0] * rf


def uniform_(t, a=0.0, b=1.0, generator=None):
    """``uniform_(tensor, a=0, b=1, generator=None)``: fills with U(a, b)."""
    with no_grad():
        return t.uniform_(a, b, generator=generator)


def normal_(t, mean=0.0, std=1.0, generator=None):
    """``normal_(tensor, mean=0, std=1, generator=None)``: fills with N(mean, std²)."""
    with no_grad():
        return t.normal_(mean, std, generator=generator)


def constant_(t, val):
    with no_grad():
        return t.fill_(val)


def zeros_(t):
    with no_grad():
        return t.zero_()


def ones_(t):
    with no_grad():
        return t.fill_(1.0)


def eye_(t):
    if t.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with no_grad():
        return t.copy_(_C.eye(t.shape[0], t.shape[1], dtype=t.dtype))


def xavier_uniform_(t, gain=1.0, generator=None):
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(t, -a, a, generator)


def xavier_normal_(t, gain=1.0, generator=None):
    """Glorot normal: N(0, std²) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _fan(t, mode):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan_mode)``."""
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(_fan(t, mode))
    return uniform_(t, -bound, bound, generator)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: N(0, std²) with ``std = gain / sqrt(fan_mode)``."""
    gain = calculate_gain(nonlinearity, a)
    return normal_(t, 0.0, gain / math.sqrt(_fan(t, mode)), generator)


def trunc_normal_(t, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """``trunc_normal_(tensor, mean=0, std=1, a=-2, b=2, generator=None)``: N(mean, std²)
    truncated to [a, b], drawn as PyTorch does: uniform over the CDF's range of [a, b], then
    the inverse CDF (``erfinv``)."""
    def cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    if a > b:
        raise ValueError(f"trunc_normal_: a ({a}) must not exceed b ({b})")
    with no_grad():
        lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
        t.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)
        t.erfinv_()
        t.mul_(std * math.sqrt(2.0))
        t.add_(mean)
        return t.clamp_(min=a, max=b)


def orthogonal_(t, gain=1, generator=None):
    """``orthogonal_(tensor, gain=1, generator=None)``: a (semi-)orthogonal matrix (rows or
    columns orthonormal, whichever are fewer) from the QR decomposition of a normal draw, as
    PyTorch makes it (trailing dimensions are flattened), times ``gain``."""
    if t.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if t.numel() == 0:
        return t
    rows = t.shape[0]
    cols = t.numel() // rows
    with no_grad():
        flat = _C.randn(rows, cols, generator=generator, dtype=t.dtype)
        if rows < cols:
            flat = flat.t()
        from ..linalg import qr

        q, r = qr(flat)
        q = q * r.diagonal().sign()
        if rows < cols:
            q = q.t()
        t.copy_(q.reshape(t.shape))
        return t.mul_(gain)


def sparse_(t, sparsity, std=0.01, generator=None):
    """``sparse_(tensor, sparsity, std=0.01, generator=None)``: a 2-D tensor drawn from
    N(0, std²) with ``ceil(sparsity * rows)`` zeros in each column (Martens 2010)."""
    if t.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = t.shape
    num_zeros = int(math.ceil(sparsity * rows))
    with no_grad():
        t.normal_(0, std, generator=generator)
        for c in range(cols):
            idx = _C.randperm(rows, generator=generator)[:num_zeros]
            for i in idx.tolist():
                t[i, c] = 0
    return t


def dirac_(t, groups=1):
    """``dirac_(tensor, groups=1)``: the identity of a {3, 4, 5}-D convolution weight (each
    of ``groups`` blocks passes its input channels through unchanged)."""
    dims = t.dim()
    if dims not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = t.shape
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = sizes[0] // groups
    min_dim = min(out_per_group, sizes[1])
    with no_grad():
        t.zero_()
        for g in range(groups):
            for d in range(min_dim):
                idx = (g * out_per_group + d, d) + tuple(k // 2 for k in sizes[2:])
                t[idx] = 1
    return t
