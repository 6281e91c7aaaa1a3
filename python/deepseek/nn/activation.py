"""Activation modules over ``deepseek.nn.functional`` (``Hardtanh``, ``ReLU6``, ``SELU``,
``PReLU``, ...), with PyTorch's constructor arguments, ``inplace`` flags and reprs."""

from .. import _C
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["Threshold", "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish", "SELU", "CELU", "GLU",
           "Hardshrink", "Softshrink", "Tanhshrink", "LogSigmoid", "Softsign", "Mish", "PReLU",
           "RReLU", "Softmin", "Softmax2d"]


def _module(name, fn, doc, params, inplace=False):
    """A module class ``name(*params, [inplace])`` whose forward is ``fn(x, *params)``;
    ``params`` is a list of (argument, default) pairs (``...`` as default: required)."""
    names = [p for p, _ in params]

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        allowed = names + (["inplace"] if inplace else [])
        if len(args) > len(allowed):
            raise TypeError(f"{name}() takes at most {len(allowed)} arguments "
                            f"({len(args)} given)")
        vals = dict(params)
        if inplace:
            vals["inplace"] = False
        vals.update(zip(allowed, args))
        for k, v in kwargs.items():
            if k not in allowed:
                raise TypeError(f"{name}.__init__() got an unexpected keyword argument '{k}'")
            vals[k] = v
        for k, v in vals.items():
            if v is Ellipsis:
                raise TypeError(f"{name}.__init__() missing required argument: '{k}'")
            setattr(self, k, v)
        check = getattr(type(self), "_check", None)
        if check:
            check(self)

    def forward(self, input):
        kw = {k: getattr(self, k) for k in names}
        if inplace:
            kw["inplace"] = self.inplace
        return fn(input, **kw)

    def extra_repr(self):
        s = ", ".join(f"{k}={getattr(self, k)}" for k in names)
        if inplace and self.inplace:
            s = (s + ", " if s else "") + "inplace=True"
        return s

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc,
                                  "__module__": __name__})


Threshold = _module("Threshold", F.threshold, "``x`` if ``x > threshold`` else ``value``.",
                    [("threshold", ...), ("value", ...)], inplace=True)
Hardtanh = _module("Hardtanh", F.hardtanh, "``clamp(x, min_val, max_val)``.",
                   [("min_val", -1.0), ("max_val", 1.0)], inplace=True)
Hardtanh._check = lambda self: F.hardtanh(_C.zeros(1), self.min_val, self.max_val)
ReLU6 = _module("ReLU6", F.relu6, "``min(max(0, x), 6)``.", [], inplace=True)
Hardsigmoid = _module("Hardsigmoid", F.hardsigmoid, "``relu6(x + 3) / 6``.", [], inplace=True)
Hardswish = _module("Hardswish", F.hardswish, "``x * relu6(x + 3) / 6``.", [], inplace=True)
SELU = _module("SELU", F.selu, "Scaled ELU with the self-normalising constants.", [],
               inplace=True)
CELU = _module("CELU", F.celu, "``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.",
               [("alpha", 1.0)], inplace=True)
GLU = _module("GLU", F.glu, "Gated linear unit over ``dim``.", [("dim", -1)])
Hardshrink = _module("Hardshrink", F.hardshrink, "``x`` where ``|x| > lambd``, else 0.",
                     [("lambd", 0.5)])
Softshrink = _module("Softshrink", F.softshrink, "Soft shrinkage by ``lambd``.",
                     [("lambd", 0.5)])
Tanhshrink = _module("Tanhshrink", F.tanhshrink, "``x - tanh(x)``.", [])
LogSigmoid = _module("LogSigmoid", F.logsigmoid, "``log(sigmoid(x))``.", [])
Softsign = _module("Softsign", F.softsign, "``x / (1 + |x|)``.", [])
Mish = _module("Mish", F.mish, "``x * tanh(softplus(x))``.", [], inplace=True)
Softmin = _module("Softmin", F.softmin, "``softmax(-x)`` over ``dim``.", [("dim", None)])


def _rrelu(x, lower, upper, inplace, training):
    return F.rrelu(x, lower, upper, training, inplace)


class RReLU(Module):
    """Randomised leaky ReLU: a random negative slope from U(lower, upper) per element in
    training, ``(lower + upper) / 2`` in evaluation."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        if lower > upper:
            raise ValueError(f"Lower bound should be less than or equal to the upper bound, "
                             f"but got lower={lower} and upper={upper}")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}" + (", inplace=True" if self.inplace
                                                            else "")


class PReLU(Module):
    """``max(0, x) + a * min(0, x)`` with a learnable slope ``a`` (one, or one per channel),
    initialised to ``init``."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(_C.full((num_parameters,), float(init)))
        if dtype is not None:
            self.to(dtype)

    def reset_parameters(self):
        from .._grad_mode import no_grad

        with no_grad():
            self.weight.fill_(self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Softmax2d(Module):
    """Softmax over the channels of [N, C, H, W] (or [C, H, W]) inputs."""

    def forward(self, input):
        if input.dim() not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.dim()}D "
                             f"instead")
        return F.softmax(input, -3)
