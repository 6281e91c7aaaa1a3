"""deepseek: a deep-learning framework in Rust with a PyTorch-style Python front.

``import deepseek as torch`` runs ordinary PyTorch code where the features exist: tensors
with autograd (``deepseek.Tensor``), ``deepseek.nn`` (Module, layers, losses, functional),
``deepseek.optim`` (SGD, Adam, AdamW, RMSprop, LR schedulers), ``deepseek.utils.data``,
``deepseek.amp`` / ``deepseek.cuda.amp`` (GradScaler; autocast is a no-op on the CPU) and
``deepseek.trainer.Trainer``. The compute runs in the Rust library (``deepseek._C``).
"""

from . import _C
from ._C import (
    Tensor,
    dtype,
    device,
    float32,
    float,
    float64,
    double,
    float16,
    half,
    bfloat16,
    int64,
    long,
    int32,
    int,
    uint8,
    bool,
    tensor,
    from_numpy,
    as_tensor,
    from_dlpack,
    zeros,
    ones,
    rand,
    randn,
    empty,
    full,
    arange,
    linspace,
    eye,
    randint,
    randperm,
    zeros_like,
    ones_like,
    rand_like,
    randn_like,
    empty_like,
    full_like,
    cat,
    stack,
    where,
    einsum,
    is_tensor,
    is_grad_enabled,
    set_num_threads,
    get_num_threads,
    load_file,
    save_file,
    is_lazy,
    set_lazy,
    kernel_stats,
    reset_kernel_stats,
)
from ._grad_mode import no_grad, enable_grad, set_grad_enabled, inference_mode
from ._ops import *  # noqa: F401,F403  (torch.exp, torch.sum, ... as functions)
from ._ops import __all__ as _ops_all
from . import return_types, autograd, linalg, nn, optim, utils, amp, cuda, backends, accelerator
from . import models, tokenizers, onnx, serialization, distributed, viz
from . import quantization, ao  # noqa: E402
from . import adversarial  # noqa: E402
from .quantization import (qint8, quint8, per_tensor_affine, per_tensor_symmetric,  # noqa: E402,F401
                           per_channel_affine, per_channel_symmetric, quantize_per_tensor,
                           fake_quantize_per_tensor_affine,
                           fake_quantize_per_channel_affine)
from .serialization import save, load
from ._dtype_info import finfo, iinfo
from ._tensor_extras import _install as _install_extras
from ._select_ops import *  # noqa: F401,F403  (roll, diag, nonzero, unique, scatter, ...)
from ._select_ops import _install as _install_select

_install_extras()
_install_select()
del _install_extras, _install_select
from . import _api_ext  # noqa: E402  (the composed math/reduction/shape ops of _math_ops, ...)

globals().update(_api_ext.install())
globals().update(_api_ext.install_misc())

concat = cat
concatenate = cat


class Size(tuple):
    """A shape, like ``torch.Size``: a tuple of ints (``tensor.shape`` and ``tensor.size()``
    return one); slicing gives a ``Size`` too."""

    def __repr__(self):
        return f"deepseek.Size({list(self)})"

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __reduce__(self):
        return (Size, (tuple(self),))

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


def _typed(name, dt):
    def ctor(*args, **kwargs):
        return Tensor(*args, dtype=dt, **kwargs)

    ctor.__name__ = name
    ctor.__doc__ = f"``deepseek.{name}(*sizes)`` or ``deepseek.{name}(data)`` with dtype {dt}."
    return ctor


FloatTensor = _typed("FloatTensor", float32)
DoubleTensor = _typed("DoubleTensor", float64)
HalfTensor = _typed("HalfTensor", float16)
BFloat16Tensor = _typed("BFloat16Tensor", bfloat16)
LongTensor = _typed("LongTensor", int64)
IntTensor = _typed("IntTensor", int32)
ByteTensor = _typed("ByteTensor", uint8)
BoolTensor = _typed("BoolTensor", bool)


import builtins  # noqa: E402


Generator = _C.Generator
default_generator = _C.default_generator
from . import random  # noqa: E402
from .random import get_rng_state, set_rng_state  # noqa: E402


def manual_seed(seed):
    """Seeds deepseek's global random generator (parameter init, randn, dropout, shuffling);
    returns ``default_generator``."""
    _C.manual_seed(seed)
    return default_generator


def seed():
    """Seeds the global generator from the OS and returns the seed."""
    return default_generator.seed()


def is_floating_point(t):
    """``is_floating_point(input)``: True for floating dtypes."""
    return t.is_floating_point()


def numel(t):
    """``numel(input)``: number of elements."""
    return t.numel()


def get_default_dtype():
    """The default floating dtype for new tensors (float32 unless changed)."""
    return float32


def set_default_dtype(d):
    """``set_default_dtype(d)``: make ``d`` (float32 or float64) the default floating dtype."""
    if d is not float32:
        raise NotImplementedError("deepseek's default dtype is float32 and cannot be changed yet")


class lazy:
    """Deferred execution with operator fusion inside the block (or the decorated function).

    Elementwise ops (arithmetic, activations, comparisons, ``where``, dtype casts and copies)
    return tensors whose shape and dtype are known at once -- errors raise at the call that
    caused them -- but whose values are computed only when needed: reading them (``item``,
    ``tolist``, ``numpy``, printing), an op that is not deferred (matmul, reductions, ...),
    ``t.realize()``, or the end of the block. A chain of elementwise ops then runs as one
    fused kernel. ``DEEPSEEK_LAZY=1`` turns lazy mode on for a whole process;
    ``DEEPSEEK_DEBUG=1`` prints each fused kernel; ``deepseek.kernel_stats()`` counts them.
    """

    def __enter__(self):
        _C._lazy_enter()
        return self

    def __exit__(self, *exc):
        _C._lazy_exit()
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with lazy():
                return fn(*args, **kwargs)

        return wrapper


def _realize_all(out):
    if isinstance(out, Tensor):
        out.realize()
    elif isinstance(out, (list, tuple)):
        for o in out:
            _realize_all(o)
    elif isinstance(out, dict):
        for o in out.values():
            _realize_all(o)
    return out


def compile(model=None, **kwargs):
    """Like ``torch.compile``: returns ``model`` (a module or a function) running in lazy
    mode, so the elementwise chains of each call -- forward, and the backward built from it
    -- are deferred and fused into single kernels; outputs are realised before they are
    returned. Modules are compiled in place (their calls run lazily) and returned, so
    parameters and ``state_dict`` stay as they are. ``torch.compile``'s tuning arguments
    (``mode``, ``fullgraph``, ``dynamic``, ``backend``) are accepted and have no effect on
    the CPU interpreter.
    """
    if model is None:
        return lambda m: compile(m, **kwargs)
    from .nn import Module

    if isinstance(model, Module):
        fwd = model.forward

        def forward(*args, **kw):
            with lazy():
                return _realize_all(fwd(*args, **kw))

        model.__dict__["forward"] = forward
        return model
    if not callable(model):
        raise TypeError(f"compile expects a module or a callable, got {type(model).__name__}")
    import functools

    @functools.wraps(model)
    def compiled(*args, **kw):
        with lazy():
            return _realize_all(model(*args, **kw))

    return compiled


__version__ = "0.1.0"

# ``from deepseek import *`` must not shadow the builtins float/int/bool (reach those dtypes
# as deepseek.float etc.).
__all__ = sorted(n for n in dict(globals()) if not n.startswith("_")
                 and n not in ("float", "int", "bool", "builtins", "random"))


import math as _math

_PRINT_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=_math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """How tensors are printed, as ``torch.set_printoptions``: ``precision`` digits
    (default 4), summarise above ``threshold`` elements (1000; ``float('inf')`` never) to
    ``edgeitems`` per edge (3), wrap at ``linewidth`` (80); ``sci_mode`` True/False forces
    scientific/fixed notation, None picks it from the values. ``profile`` is "default",
    "short" or "full"; explicit arguments override it."""
    opts = {}
    if profile is not None:
        if profile not in _PRINT_PROFILES:
            raise ValueError(f"set_printoptions: unknown profile {profile!r} "
                             f"(expected one of {sorted(_PRINT_PROFILES)})")
        opts.update(_PRINT_PROFILES[profile])
    for k, v in (("precision", precision), ("threshold", threshold),
                 ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if v is not None:
            opts[k] = v
    _C.set_printoptions(sci_mode=sci_mode, **opts)


def get_printoptions():
    """The current print options as a dict (``torch._tensor_str.get_printoptions()``)."""
    p, t, e, lw, sci = _C.get_printoptions()
    return dict(precision=p, threshold=t, edgeitems=e, linewidth=lw, sci_mode=sci)
__all__ = sorted(set(__all__) | {"set_printoptions", "get_printoptions"})

from . import func  # noqa: E402  (torch.func transforms; deepseek.vmap is func.vmap)

func._install()
vmap = func.vmap
