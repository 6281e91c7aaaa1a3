"""Lazy modules (``LazyLinear``, ``LazyConv1d``..., ``LazyBatchNorm1d``...): the input
size (``in_features``, ``in_channels``, ``num_features``) is read from the first input;
until then the parameters are ``UninitializedParameter`` placeholders. The first call
builds the matching regular module with that size (PyTorch's initialisation), moves its
values into the placeholders -- which keep their identity, so an optimizer built on them
stays valid -- and the module becomes that regular class (``cls_to_become``)."""

from .. import _C
from .._grad_mode import no_grad
from . import layers, layers_extra, layers_more
from .module import Module
from .parameter import Buffer, Parameter

__all__ = ["UninitializedParameter", "UninitializedBuffer", "LazyLinear", "LazyConv1d",
           "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d",
           "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d",
           "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d"]


class _Uninitialized:
    cls_to_become = None

    def materialize(self, shape, device=None, dtype=None):
        """Gives the placeholder ``shape`` (zeros) and turns it into ``cls_to_become``."""
        shape = tuple(shape)
        with no_grad():
            self._replace_data(_C.zeros(*shape, dtype=dtype or self.dtype))
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter or buffer. "
                           "This error usually happens in `load_state_dict` when trying to "
                           "load an uninitialized parameter into an initialized one. Call "
                           "`forward` to initialize the parameters before accessing their "
                           "attributes.")

    def __repr__(self):
        return f"<{type(self).__name__}>"


class UninitializedParameter(_Uninitialized, Parameter):
    """A parameter whose shape is not known yet (see ``materialize``)."""

    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        return Parameter.__new__(cls, _C.zeros(0, dtype=dtype or _C.float32), requires_grad)

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass


class UninitializedBuffer(_Uninitialized, Buffer):
    """A buffer whose shape is not known yet (see ``materialize``)."""

    cls_to_become = Buffer

    def __new__(cls, requires_grad=False, device=None, dtype=None, persistent=True):
        return Buffer.__new__(cls, _C.zeros(0, dtype=dtype or _C.float32), persistent)

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        pass


def _is_uninit(t):
    return isinstance(t, _Uninitialized)


class _LazyMixin:
    """Builds ``cls_to_become(size, *args, **kwargs)`` on the first call, ``size`` read
    from the input by ``_infer``."""

    cls_to_become = None
    _uninit_buffers = ()
    _defaults = {}

    def __init__(self, *args, **kwargs):
        Module.__init__(self)
        kwargs = {**self._defaults, **kwargs}
        d = self.__dict__
        d["_lazy_args"] = (args, kwargs)
        state = _C.get_rng_state()
        probe = self.cls_to_become(1, *args, **kwargs)  # names and hyper-parameters
        _C.set_rng_state(state)
        for k, v in probe.__dict__.items():
            if not k.startswith("_") and k != "training":
                d[k] = v
        for k in ("in_features", "in_channels", "num_features"):
            if k in d:
                d[k] = 0  # unknown until the first input, as in PyTorch
        for name, p in probe._parameters.items():
            self.register_parameter(name, None if p is None else
                                    UninitializedParameter(p.requires_grad, dtype=p.dtype))
        for name, b in probe._buffers.items():
            if b is not None and name in self._uninit_buffers:
                b = UninitializedBuffer(dtype=b.dtype)
            self.register_buffer(name, b)

    def has_uninitialized_params(self):
        """Whether a parameter or buffer is still a placeholder."""
        return any(_is_uninit(t) for t in list(self._parameters.values()) +
                   list(self._buffers.values()))

    def initialize_parameters(self, input, *args, **kwargs):
        """Materialises the placeholders for ``input`` (called by the first forward)."""
        args_, kwargs_ = self._lazy_args
        real = self.cls_to_become(self._infer(input), *args_, **kwargs_)
        for coll in ("_parameters", "_buffers"):
            mine = getattr(self, coll)
            for name, t in getattr(real, coll).items():
                cur = mine.get(name)
                if _is_uninit(cur):
                    cur.materialize(tuple(t.shape), dtype=t.dtype)
                    with no_grad():
                        cur.copy_(t)
        for k, v in real.__dict__.items():
            if not k.startswith("_") and k != "training":
                self.__dict__[k] = v
        self.__class__ = self.cls_to_become

    def __call__(self, *args, **kwargs):
        if self.has_uninitialized_params():
            self.initialize_parameters(*args, **kwargs)
        return Module.__call__(self, *args, **kwargs)


def _features(input):
    return input.shape[-1]


def _channels(nsp):
    def infer(input):
        return input.shape[0] if input.dim() == nsp + 1 else input.shape[1]

    return infer


def _lazy(name, base, infer, doc, uninit_buffers=(), defaults=None):
    return type(name, (_LazyMixin, base), {
        "cls_to_become": base, "_infer": staticmethod(infer),
        "_uninit_buffers": uninit_buffers, "_defaults": defaults or {},
        "__doc__": doc, "__module__": __name__,
        "__init__": _LazyMixin.__init__, "__call__": _LazyMixin.__call__})


LazyLinear = _lazy("LazyLinear", layers.Linear, _features,
                   "``Linear`` whose ``in_features`` is read from the first input.")
LazyConv1d = _lazy("LazyConv1d", layers.Conv1d, _channels(1),
                   "``Conv1d`` whose ``in_channels`` is read from the first input.")
LazyConv2d = _lazy("LazyConv2d", layers.Conv2d, _channels(2),
                   "``Conv2d`` whose ``in_channels`` is read from the first input.")
LazyConv3d = _lazy("LazyConv3d", layers_more.Conv3d, _channels(3),
                   "``Conv3d`` whose ``in_channels`` is read from the first input.")
LazyConvTranspose1d = _lazy("LazyConvTranspose1d", layers_extra.ConvTranspose1d, _channels(1),
                            "``ConvTranspose1d`` whose ``in_channels`` is read from the first "
                            "input.")
LazyConvTranspose2d = _lazy("LazyConvTranspose2d", layers_extra.ConvTranspose2d, _channels(2),
                            "``ConvTranspose2d`` whose ``in_channels`` is read from the first "
                            "input.")
LazyConvTranspose3d = _lazy("LazyConvTranspose3d", layers_more.ConvTranspose3d, _channels(3),
                            "``ConvTranspose3d`` whose ``in_channels`` is read from the first "
                            "input.")
_STATS = ("running_mean", "running_var")
_LAZY_NORM = {"affine": True, "track_running_stats": True}
LazyBatchNorm1d = _lazy("LazyBatchNorm1d", layers.BatchNorm1d, lambda x: x.shape[1],
                        "``BatchNorm1d`` whose ``num_features`` is read from the first input.",
                        _STATS)
LazyBatchNorm2d = _lazy("LazyBatchNorm2d", layers.BatchNorm2d, lambda x: x.shape[1],
                        "``BatchNorm2d`` whose ``num_features`` is read from the first input.",
                        _STATS)
LazyBatchNorm3d = _lazy("LazyBatchNorm3d", layers_extra.BatchNorm3d, lambda x: x.shape[1],
                        "``BatchNorm3d`` whose ``num_features`` is read from the first input.",
                        _STATS)
LazyInstanceNorm1d = _lazy("LazyInstanceNorm1d", layers_extra.InstanceNorm1d, _channels(1),
                           "``InstanceNorm1d`` whose ``num_features`` is read from the first "
                           "input (PyTorch's lazy defaults: affine and running statistics "
                           "on).", _STATS, _LAZY_NORM)
LazyInstanceNorm2d = _lazy("LazyInstanceNorm2d", layers_extra.InstanceNorm2d, _channels(2),
                           "``InstanceNorm2d`` whose ``num_features`` is read from the first "
                           "input (PyTorch's lazy defaults: affine and running statistics "
                           "on).", _STATS, _LAZY_NORM)
LazyInstanceNorm3d = _lazy("LazyInstanceNorm3d", layers_extra.InstanceNorm3d, _channels(3),
                           "``InstanceNorm3d`` whose ``num_features`` is read from the first "
                           "input (PyTorch's lazy defaults: affine and running statistics "
                           "on).", _STATS, _LAZY_NORM)
