"""Elementwise math of PyTorch's API composed from the core's primitives (so autograd,
lazy fusion and every backend apply): trigonometric and hyperbolic functions (``atan``
is Cephes' rational approximation, accurate to float64 rounding, from which ``asin``,
``acos`` and ``atan2`` follow), ``hypot``, ``logaddexp``, ``xlogy``, ``fmod``, ``trunc``,
``frac``, comparison aliases, bitwise ops, and the in-place ``_`` variants. Each name
becomes a function ``deepseek.<name>`` and a ``Tensor`` method where PyTorch has one."""

import math

import numpy as np

from . import _C

_T = _C.Tensor
_where = _C.where

METHODS = {}  # name -> function installed as a Tensor method
FUNCTIONS = {}  # name -> function installed as deepseek.<name>


def _op(*names, method=True, function=True):
    def deco(f):
        for n in names:
            if method:
                METHODS[n] = f
            if function:
                FUNCTIONS[n] = f
        return f

    return deco


def _float(x):
    return x if x.is_floating_point() else x.to(_C.float32)


def _t(v, like):
    """``v`` as a tensor of ``like``'s dtype (numbers become 0-d tensors)."""
    if isinstance(v, _T):
        return v
    return _C.full((), float(v), dtype=like.dtype if like.is_floating_point() else _C.float32)


# --- trigonometric -------------------------------------------------------------------------

_ATAN_P = (-8.750608600031904122785e-1, -1.615753718733365076637e1,
           -7.500855792314704667340e1, -1.228866684490136173410e2,
           -6.485021904942025371773e1)
_ATAN_Q = (2.485846490142306297962e1, 1.650270098316988542046e2,
           4.328810604912902668951e2, 4.853903996359136964868e2,
           1.945506571482613964425e2)
_T3P8 = 2.41421356237309504880
_MOREBITS = 6.123233995736765886130e-17


def _poly(z, coeffs, leading_one=False):
    acc = _C.zeros_like(z) + (1.0 if leading_one else coeffs[0])
    for c in (coeffs if leading_one else coeffs[1:]):
        acc = acc * z + c
    return acc


@_op("atan", "arctan")
def atan(input):
    """Arc tangent, elementwise (Cephes' range reduction and rational approximation)."""
    x = _float(input)
    sign = x.sign()
    a = x.abs()
    big = a > _T3P8
    mid = (a > 0.66).logical_and(big.logical_not())
    one = _C.ones_like(a)
    xb = -1.0 / _where(big, a, one)
    xm = (a - 1) / (a + 1)
    xr = _where(big, xb, _where(mid, xm, a))
    base = _where(big, one * (math.pi / 2 + _MOREBITS),
                  _where(mid, one * (math.pi / 4 + 0.5 * _MOREBITS), _C.zeros_like(a)))
    z = xr * xr
    r = z * _poly(z, _ATAN_P) / _poly(z, _ATAN_Q, leading_one=True)
    return sign * (base + xr * r + xr)


@_op("asin", "arcsin")
def asin(input):
    """Arc sine, elementwise (``atan2(x, sqrt(1 - x^2))``; NaN outside [-1, 1])."""
    x = _float(input)
    return atan2(x, (1 - x * x).sqrt())


@_op("acos", "arccos")
def acos(input):
    """Arc cosine, elementwise (``atan2(sqrt(1 - x^2), x)``; NaN outside [-1, 1])."""
    x = _float(input)
    return atan2((1 - x * x).sqrt(), x)


@_op("atan2", "arctan2")
def atan2(input, other):
    """The angle of the point ``(other, input)``: ``atan(input / other)`` in the right
    quadrant, in (-pi, pi]."""
    y, x = _float(input), _t(other, _float(input))
    if not x.is_floating_point():
        x = x.to(y.dtype)
    zero = _C.zeros_like(y) + _C.zeros_like(x)
    y, x = y + zero, x + zero
    xz = x == 0
    safe_x = _where(xz, zero + 1, x)
    base = atan(y / safe_x)
    pi = zero + math.pi
    neg_y = (y < 0).logical_or((y == 0).logical_and(y.sign() < 0))
    shifted = _where(x < 0, _where(neg_y, base - pi, base + pi), base)
    return _where(xz, _where(y > 0, pi / 2, _where(y < 0, -pi / 2, zero)), shifted)


@_op("tan")
def tan(input):
    """Tangent, elementwise."""
    x = _float(input)
    return x.sin() / x.cos()


@_op("sinh")
def sinh(input):
    """Hyperbolic sine: ``(e^x - e^-x) / 2`` (``expm1`` form for accuracy near 0)."""
    x = _float(input)
    return (x.expm1() - (-x).expm1()) / 2


@_op("cosh")
def cosh(input):
    """Hyperbolic cosine: ``(e^x + e^-x) / 2``."""
    x = _float(input)
    return (x.exp() + (-x).exp()) / 2


@_op("asinh", "arcsinh")
def asinh(input):
    """Inverse hyperbolic sine: ``sign(x) log(|x| + sqrt(x^2 + 1))``."""
    x = _float(input)
    a = x.abs()
    return x.sign() * (a + (a * a + 1).sqrt()).log()


@_op("acosh", "arccosh")
def acosh(input):
    """Inverse hyperbolic cosine: ``log(x + sqrt(x^2 - 1))`` (NaN below 1)."""
    x = _float(input)
    return (x + ((x - 1) * (x + 1)).sqrt()).log()


@_op("atanh", "arctanh")
def atanh(input):
    """Inverse hyperbolic tangent: ``(log1p(x) - log1p(-x)) / 2``."""
    x = _float(input)
    return (x.log1p() - (-x).log1p()) / 2


@_op("deg2rad")
def deg2rad(input):
    """Degrees to radians."""
    return _float(input) * (math.pi / 180)


@_op("rad2deg")
def rad2deg(input):
    """Radians to degrees."""
    return _float(input) * (180 / math.pi)


@_op("sinc")
def sinc(input):
    """Normalised sinc: ``sin(pi x) / (pi x)``, 1 at 0."""
    x = _float(input)
    z = x == 0
    one = _C.ones_like(x)
    px = _where(z, one, x) * math.pi
    return _where(z, one, px.sin() / px)


# --- exponentials and logs ----------------------------------------------------------------

@_op("exp2")
def exp2(input):
    """``2 ** x``."""
    return (_float(input) * math.log(2)).exp()


@_op("erfc")
def erfc(input):
    """Complementary error function ``1 - erf(x)`` (absolute accuracy; the relative
    accuracy of the far tail is that of the subtraction)."""
    return 1 - _float(input).erf()


@_op("logit")
def logit(input, eps=None):
    """``log(p / (1 - p))``; with ``eps`` the input is clamped to [eps, 1 - eps] first."""
    x = _float(input)
    if eps is not None:
        x = x.clamp(eps, 1 - eps)
    return (x / (1 - x)).log()


@_op("xlogy")
def xlogy(input, other):
    """``x * log(y)``, 0 where ``x == 0`` (unless ``y`` is NaN)."""
    x = _float(input) if isinstance(input, _T) else input
    y = _t(other, x if isinstance(x, _T) else other)
    if not isinstance(x, _T):
        x = _t(x, y)
    y = _float(y)
    x = x.to(y.dtype) if x.dtype != y.dtype and not x.is_floating_point() else x
    zero = x == 0
    safe_y = _where(zero.logical_and(y == y), _C.ones_like(y), y)
    return _where(zero.logical_and(y == y), _C.zeros_like(x) + _C.zeros_like(safe_y), x * safe_y.log())


@_op("logaddexp")
def logaddexp(input, other):
    """``log(e^x + e^y)`` without overflow."""
    x, y = _float(input), _float(_t(other, input))
    m = x.maximum(y)
    mm = _where(m.abs() == math.inf, _C.zeros_like(m), m).detach()
    return _where(x == y, x + math.log(2),
                  mm + ((x - mm).exp() + (y - mm).exp()).log())


@_op("logaddexp2")
def logaddexp2(input, other):
    """``log2(2^x + 2^y)`` without overflow."""
    ln2 = math.log(2)
    return logaddexp(_float(input) * ln2, _float(_t(other, input)) * ln2) / ln2


@_op("hypot")
def hypot(input, other):
    """``sqrt(x^2 + y^2)``, scaled so it neither overflows nor underflows."""
    x, y = _float(input).abs(), _float(_t(other, input)).abs()
    m = x.maximum(y)
    safe = _where(m == 0, m + 1, m)
    return m * ((x / safe) ** 2 + (y / safe) ** 2).sqrt()


@_op("float_power")
def float_power(input, exponent):
    """``input ** exponent`` in float64."""
    if isinstance(input, _T):
        base = input.to(_C.float64)
        e = exponent.to(_C.float64) if isinstance(exponent, _T) else float(exponent)
        return base.pow(e)
    return _C.full((), float(input), dtype=_C.float64).pow(exponent.to(_C.float64))


@_op("ldexp")
def ldexp(input, other):
    """``input * 2 ** other``."""
    return _float(input) * exp2(_float(_t(other, input)))


# --- rounding and signs -------------------------------------------------------------------

@_op("trunc", "fix")
def trunc(input):
    """Rounds toward zero."""
    if not input.is_floating_point():
        return input.clone()
    return input.sign() * input.abs().floor()


@_op("frac")
def frac(input):
    """``x - trunc(x)``, the fractional part with the sign of ``x``."""
    if not input.is_floating_point():
        raise TypeError(f"frac: expected a floating-point tensor, got {input.dtype}")
    return input - trunc(input)


@_op("sgn")
def sgn(input):
    """``sign`` (deepseek has no complex tensors)."""
    return input.sign()


@_op("signbit")
def signbit(input):
    """True where the sign bit is set (negative numbers and -0.0)."""
    if not input.is_floating_point():
        return input < 0
    return (input < 0).logical_or((input == 0).logical_and((1.0 / input) < 0))


@_op("positive")
def positive(input):
    """Returns ``input`` (the unary ``+``)."""
    if input.dtype == _C.bool:
        raise TypeError("The `+` operator, on a bool tensor is not supported.")
    return input


@_op("copysign")
def copysign(input, other):
    """``|input|`` with the sign of ``other`` (``-0.0`` counts as negative)."""
    x = _float(input)
    o = _t(other, x)
    return _where(signbit(o), -x.abs(), x.abs())


@_op("fmod")
def fmod(input, other):
    """C's ``fmod``: the remainder of ``input / other`` with the sign of ``input``."""
    o = _t(other, input) if not isinstance(other, _T) else other
    if not input.is_floating_point() and not o.is_floating_point():
        q = input.float() / o.float()
        return input - (trunc(q) * o.float()).to(input.dtype)
    return input - trunc(input / o) * o


@_op("heaviside")
def heaviside(input, values):
    """0 where ``input < 0``, ``values`` where it is 0, 1 where it is positive."""
    zero = _C.zeros_like(input)
    return _where(input == 0, zero + values, _where(input > 0, zero + 1, zero))


@_op("fmax")
def fmax(input, other):
    """Elementwise maximum that ignores NaN (a NaN loses to a number)."""
    return _where(other != other, input, _where(input != input, other, input.maximum(other)))


@_op("fmin")
def fmin(input, other):
    """Elementwise minimum that ignores NaN (a NaN loses to a number)."""
    return _where(other != other, input, _where(input != input, other, input.minimum(other)))


@_op("clamp_min")
def clamp_min(input, min):
    """``max(input, min)``."""
    return input.clamp(min=min)


@_op("clamp_max")
def clamp_max(input, max):
    """``min(input, max)``."""
    return input.clamp(max=max)


@_op("rsub", method=False)
def rsub(input, other, alpha=1):
    """``other - alpha * input``."""
    return other - input * alpha if alpha != 1 else other - input


# --- comparisons --------------------------------------------------------------------------

for _alias, _base in (("greater", "gt"), ("greater_equal", "ge"), ("less", "lt"),
                      ("less_equal", "le"), ("not_equal", "ne")):
    def _cmp(input, other, _b=_base):
        return getattr(input, _b)(other)

    _cmp.__name__ = _alias
    _cmp.__doc__ = f"Alias of ``{_base}``."
    _op(_alias)(_cmp)


@_op("isclose")
def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """``|input - other| <= atol + rtol * |other|`` elementwise (infinities equal
    themselves; NaNs equal each other only with ``equal_nan``)."""
    if rtol < 0 or atol < 0:
        raise ValueError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, "
                         f"atol={atol}")
    if input.dtype != other.dtype:
        raise TypeError(f"{input.dtype} did not match {other.dtype}")
    a, b = _float(input), _float(other)
    finite = (a.abs() != math.inf).logical_and(b.abs() != math.inf)
    close = (a == b).logical_or(finite.logical_and((a - b).abs() <= atol + rtol * b.abs()))
    if equal_nan:
        close = close.logical_or((a != a).logical_and(b != b))
    return close


@_op("isposinf")
def isposinf(input):
    """True where ``input`` is +inf."""
    return input == math.inf if input.is_floating_point() else input != input


@_op("isneginf")
def isneginf(input):
    """True where ``input`` is -inf."""
    return input == -math.inf if input.is_floating_point() else input != input


@_op("isreal")
def isreal(input):
    """True everywhere (deepseek has no complex tensors)."""
    return _C.ones(*input.shape, dtype=_C.bool)


# --- bitwise and integer ops: bool tensors use the logical ops; integer tensors are not
# differentiable, so their values are computed with numpy. ---------------------------------

def _np_int(t):
    return t.detach().numpy()


def _back(a, like):
    return _C.tensor(np.ascontiguousarray(a))


def _bitwise(name, logical, npfn):
    def f(input, other):
        if isinstance(other, bool) or isinstance(other, int):
            other = _C.tensor(other, dtype=input.dtype) if input.dtype != _C.bool \
                else _C.tensor(bool(other))
        if input.is_floating_point() or other.is_floating_point():
            raise TypeError(f'"{name}_cpu" not implemented for \'{str(input.dtype).split(".")[-1]}\'')
        if input.dtype == _C.bool and other.dtype == _C.bool and logical is not None:
            return getattr(input, logical)(other)
        return _back(npfn(_np_int(input), _np_int(other)), input)

    f.__name__ = name
    f.__doc__ = f"Elementwise ``{name}`` of integer or bool tensors."
    return _op(name)(f)


bitwise_and = _bitwise("bitwise_and", "logical_and", np.bitwise_and)
bitwise_or = _bitwise("bitwise_or", "logical_or", np.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor", "logical_xor", np.bitwise_xor)
bitwise_left_shift = _bitwise("bitwise_left_shift", None, np.left_shift)
bitwise_right_shift = _bitwise("bitwise_right_shift", None, np.right_shift)
gcd = _bitwise("gcd", None, np.gcd)
lcm = _bitwise("lcm", None, np.lcm)


@_op("bitwise_not")
def bitwise_not(input):
    """Elementwise NOT of integer or bool tensors."""
    if input.is_floating_point():
        raise TypeError("bitwise_not: expected an integer or bool tensor")
    if input.dtype == _C.bool:
        return input.logical_not()
    return _back(np.invert(_np_int(input)), input)


# --- in-place variants --------------------------------------------------------------------

def _make_inplace(name, fn):
    def f(self, *args, **kwargs):
        out = fn(self, *args, **kwargs)
        if out.dtype != self.dtype:
            out = out.to(self.dtype)
        return _C._assign_inplace(self, out, name)

    f.__name__ = name
    f.__doc__ = f"In-place ``{name[:-1]}``."
    return f


def _method(name):
    def f(self, *args, **kwargs):
        return getattr(self, name)(*args, **kwargs)

    f.__doc__ = f"Alias of ``Tensor.{name}``."
    return f


_INPLACE_OF_NEW = ["atan", "arctan", "asin", "arcsin", "acos", "arccos", "atan2", "arctan2",
                   "tan", "sinh", "cosh", "asinh", "arcsinh", "acosh", "arccosh", "atanh",
                   "arctanh", "deg2rad", "rad2deg", "sinc", "exp2", "erfc", "logit", "xlogy",
                   "hypot", "ldexp", "trunc", "fix", "frac", "sgn", "copysign", "fmod",
                   "heaviside", "clamp_min", "clamp_max", "greater", "greater_equal", "less",
                   "less_equal", "not_equal", "bitwise_and", "bitwise_or", "bitwise_xor",
                   "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm",
                   "float_power"]
_INPLACE_OF_CORE = ["abs", "absolute", "ceil", "floor", "round", "cos", "sin", "tanh",
                    "sigmoid", "sign", "rsqrt", "reciprocal", "square", "expm1", "log",
                    "log10", "log1p", "log2", "erf", "eq", "ne", "lt", "le", "gt", "ge",
                    "logical_and", "logical_or", "logical_xor", "logical_not", "remainder",
                    "floor_divide", "true_divide", "divide", "multiply", "subtract", "negative",
                    "clip", "tril", "triu", "nan_to_num", "cumsum"]


def _float_power_(self, exponent):
    """``float_power_(exponent)``: in-place ``float_power`` (the tensor must be float64)."""
    if self.dtype != _C.float64:
        raise TypeError(f"the base given to float_power_ has dtype {self.dtype} but the "
                        f"operation's result requires dtype Double")
    return _C._assign_inplace(self, float_power(self, exponent), "float_power_")


def _install():
    T = _C.Tensor
    core_aliases = {"absolute": "abs", "divide": "div", "multiply": "mul", "subtract": "sub",
                    "negative": "neg"}
    for n, f in METHODS.items():
        if not hasattr(T, n):
            setattr(T, n, f)
    for n in _INPLACE_OF_NEW + _INPLACE_OF_CORE:
        if hasattr(T, n + "_"):
            continue
        if n == "float_power":
            T.float_power_ = _float_power_
            continue
        src = METHODS.get(n) or _method(core_aliases.get(n, n))
        setattr(T, n + "_", _make_inplace(n + "_", src))
    for alias, base in core_aliases.items():
        if not hasattr(T, alias):
            setattr(T, alias, _method(base))


# --- special functions, composed (accurate to about float64 rounding on their usual
# domains; derivatives follow from the compositions) ------------------------------------

_LANCZOS = (0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
            -176.61502916214059, 12.507343278686905, -0.13857109526572012,
            9.9843695780195716e-6, 1.5056327351493116e-7)


def _lgamma_pos(x):
    """lgamma for x >= 0.5 (Lanczos, g = 7)."""
    z = x - 1
    a = _C.zeros_like(z) + _LANCZOS[0]
    for i, c in enumerate(_LANCZOS[1:], 1):
        a = a + c / (z + i)
    t = z + 7.5
    return 0.5 * math.log(2 * math.pi) + (z + 0.5) * t.log() - t + a.log()


def _nonpos_int(x):
    return (x <= 0).logical_and(x == x.floor())


@_op("lgamma")
def lgamma(input):
    """``log |Gamma(x)|`` (Lanczos for x >= 1/2, reflection below; +inf at the poles)."""
    x = _float(input)
    small = x < 0.5
    xr = _where(small, 1 - x, x)
    lg = _lgamma_pos(xr)
    s = (x * math.pi).sin().abs()
    refl = math.log(math.pi) - _where(s == 0, _C.ones_like(s), s).log() - lg
    out = _where(small, refl, lg)
    return _where(_nonpos_int(x).logical_or(x == math.inf), _C.full_like(x, math.inf), out)


def _digamma_pos(x):
    """digamma for x >= 0.5: recurrence up by 10, then the asymptotic series."""
    acc = _C.zeros_like(x)
    for k in range(10):
        acc = acc + 1 / (x + k)
    y = x + 10
    y2 = 1 / (y * y)
    series = y2 * (1 / 12 - y2 * (1 / 120 - y2 * (1 / 252 - y2 * (1 / 240 - y2 * (1 / 132)))))
    return y.log() - 0.5 / y - series - acc


@_op("digamma", "psi")
def digamma(input):
    """The logarithmic derivative of Gamma (reflection below 1/2; -inf at 0, NaN at the
    negative integers, as PyTorch)."""
    x = _float(input)
    small = x < 0.5
    xr = _where(small, 1 - x, x)
    d = _digamma_pos(xr)
    t = (x * math.pi).tan()
    refl = d - math.pi / _where(t == 0, _C.ones_like(t), t)
    out = _where(small, refl, d)
    out = _where(x == 0, _C.full_like(x, -math.inf), out)
    out = _where(x == math.inf, _C.full_like(x, math.inf), out)
    return _where(_nonpos_int(x).logical_and(x != 0), _C.full_like(x, math.nan), out)


_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)


@_op("polygamma", method=False)
def polygamma(n, input):
    """The ``n``-th derivative of digamma: ``(-1)^(n+1) n! sum_k 1 / (x + k)^(n+1)``
    (recurrence up past 10, then the asymptotic series)."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"polygamma(n, x) does not support negative n, got n={n}")
    x = _float(input)
    if n == 0:
        return digamma(x)
    lo = float(x.min().item()) if x.numel() else 1.0
    shift = 10 + (int(math.ceil(-lo)) if lo < 0 and math.isfinite(lo) else 0)
    sign = -1.0 if n % 2 == 0 else 1.0
    fact = math.factorial(n)
    acc = _C.zeros_like(x)
    for k in range(shift):
        acc = acc + (x + k) ** (-(n + 1))
    y = x + shift
    tail = math.factorial(n - 1) / y ** n + fact / (2 * y ** (n + 1))
    for k, b in enumerate(_BERNOULLI, 1):
        tail = tail + b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) / \
            y ** (2 * k + n)
    out = sign * (fact * acc + tail)
    return _where(_nonpos_int(x), _C.full_like(x, math.inf if n % 2 else math.nan), out)


def _polygamma_method(self, n):
    """``polygamma(n, self)``."""
    return polygamma(n, self)


METHODS["polygamma"] = _polygamma_method


@_op("mvlgamma")
def mvlgamma(input, p):
    """Multivariate log-gamma of dimension ``p``: ``sum_i lgamma(x - i/2) + p(p-1)/4 log
    pi`` (every element must exceed (p - 1) / 2)."""
    if p < 1:
        raise ValueError("p has to be greater than or equal to 1")
    x = _float(input)
    if bool((x <= (p - 1) / 2).any()):
        raise ValueError(f"All elements must be greater than (p-1)/2 = {(p - 1) / 2}")
    out = _C.zeros_like(x) + p * (p - 1) / 4 * math.log(math.pi)
    for i in range(p):
        out = out + lgamma(x - i / 2)
    return out


_GILES_A = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
            -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_GILES_B = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
            -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


@_op("erfinv")
def erfinv(input):
    """Inverse error function on (-1, 1) (+-inf at +-1, NaN outside): Giles' approximation
    refined by Newton steps on ``erf``."""
    y = _float(input)
    inside = y.abs() < 1
    ys = _where(inside, y, _C.zeros_like(y))
    w = -((1 - ys) * (1 + ys)).log()
    wa, wb = w - 2.5, w.clamp(min=0).sqrt() - 3
    pa, pb = _C.zeros_like(y) + _GILES_A[0], _C.zeros_like(y) + _GILES_B[0]
    for ca, cb in zip(_GILES_A[1:], _GILES_B[1:]):
        pa = pa * wa + ca
        pb = pb * wb + cb
    x = (_where(w < 5, pa, pb) * ys).detach()
    k = 2 / math.sqrt(math.pi)
    for _ in range(2):
        x = x - (x.erf() - ys.detach()) / (k * (-x * x).exp())
    x = x.detach()
    x = x - (x.erf() - ys) / (k * (-x * x).exp())  # the step that carries the gradient
    edge = _where(y > 0, _C.full_like(y, math.inf), _C.full_like(y, -math.inf))
    return _where(inside, x, _where(y.abs() == 1, edge, _C.full_like(y, math.nan)))


@_op("i0")
def i0(input):
    """Modified Bessel function of the first kind, order 0: the power series up to |x| = 30,
    the asymptotic expansion beyond."""
    x = _float(input)
    a = x.abs()
    small = a <= 30
    xs = _where(small, a, _C.zeros_like(a))
    q = xs * xs / 4
    term = _C.ones_like(xs)
    total = _C.ones_like(xs)
    for k in range(1, 64):
        term = term * q / (k * k)
        total = total + term
    xl = _where(small, _C.full_like(a, 31.0), a)
    inv = 1 / xl
    coef, series, term = 1.0, _C.ones_like(xl), _C.ones_like(xl)
    for k in range(1, 16):  # sum_k ((2k-1)!!)^2 / (k! 8^k x^k)
        coef = (2 * k - 1) ** 2 / (8.0 * k)
        term = term * inv * coef
        series = series + term
    big = (xl - 0.5 * (2 * math.pi * xl).log()).exp() * series
    return _where(small, total, big)


@_op("nextafter")
def nextafter(input, other):
    """The next representable value after ``input`` toward ``other`` (not
    differentiable)."""
    a, b = input.detach().numpy(), _t(other, input).detach().numpy()
    return _C.tensor(np.nextafter(a, b.astype(a.dtype)))


@_op("frexp")
def frexp(input):
    """``(mantissa, exponent)`` with ``input = mantissa * 2 ** exponent`` and ``|mantissa|``
    in [0.5, 1) (not differentiable)."""
    if not input.is_floating_point():
        raise TypeError("torch.frexp() only supports floating-point dtypes")
    m, e = np.frexp(input.detach().numpy())
    import collections

    res = collections.namedtuple("frexp", ["mantissa", "exponent"])
    return res(_C.tensor(m), _C.tensor(e.astype(np.int32)))


_INPLACE_OF_NEW += ["lgamma", "digamma", "erfinv", "i0", "mvlgamma", "nextafter", "polygamma"]


def _igamma_series(a, x, n=300):
    """P(a, x) by its power series (accurate for x < a + 1)."""
    term = 1 / a
    total = term
    for k in range(1, n):
        term = term * x / (a + k)
        total = total + term
    return total * (a * x.log() - x - lgamma(a)).exp()


def _igammac_cf(a, x, n=300):
    """Q(a, x) by Lentz's continued fraction (accurate for x >= a + 1)."""
    tiny = 1e-300 if x.dtype == _C.float64 else 1e-30
    b = x + 1 - a
    c = _C.zeros_like(x) + 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, n):
        an = -i * (i - a)
        b = b + 2
        d = an * d + b
        d = _where(d.abs() < tiny, _C.zeros_like(d) + tiny, d)
        c = b + an / c
        c = _where(c.abs() < tiny, _C.zeros_like(c) + tiny, c)
        d = 1 / d
        h = h * d * c
    return (a * x.log() - x - lgamma(a)).exp() * h


def _igamma_pair(input, other):
    a, x = _float(input), _float(_t(other, input))
    a, x = a + _C.zeros_like(x), x + _C.zeros_like(a)
    small = x < a + 1
    pos = (x > 0).logical_and(a > 0)
    xs = _where(pos, x, _C.ones_like(x))
    as_ = _where(pos, a, _C.ones_like(a))
    xa = _where(small, xs, _C.ones_like(xs) * (as_ + 2))  # keep each branch in its domain
    xb = _where(small, as_ + 2, xs)
    p_small = _igamma_series(as_, xa)
    q_big = _igammac_cf(as_, xb)
    p = _where(small, p_small, 1 - q_big)
    q = _where(small, 1 - p_small, q_big)
    nan = (a < 0).logical_or(x < 0).logical_or(a != a).logical_or(x != x)
    zero_x = (x == 0).logical_and(a > 0)
    zero_a = (a == 0).logical_and(x > 0)
    p = _where(zero_x, _C.zeros_like(p), _where(zero_a, _C.ones_like(p), p))
    q = _where(zero_x, _C.ones_like(q), _where(zero_a, _C.zeros_like(q), q))
    p = _where(nan, _C.full_like(p, math.nan), p)
    q = _where(nan, _C.full_like(q, math.nan), q)
    return p, q


@_op("igamma")
def igamma(input, other):
    """Regularized lower incomplete gamma ``P(a, x)`` (``input`` = a, ``other`` = x):
    power series below ``x = a + 1``, continued fraction above."""
    return _igamma_pair(input, other)[0]


@_op("igammac")
def igammac(input, other):
    """Regularized upper incomplete gamma ``Q(a, x) = 1 - P(a, x)``."""
    return _igamma_pair(input, other)[1]


_INPLACE_OF_NEW += ["igamma", "igammac"]
