"""``Parameter``: a tensor that a ``Module`` registers as one of its parameters."""

from .. import _C


class Parameter(_C.Tensor):
    """A leaf tensor that requires grad (by default) and is registered by ``Module`` on
    attribute assignment. ``Parameter(t)`` shares ``t``'s storage."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = _C.zeros(0)
        if not isinstance(data, _C.Tensor):
            data = _C.tensor(data)
        if requires_grad and not data.is_floating_point():
            raise TypeError(f"Only Tensors of floating point dtype can require gradients "
                            f"(Parameter got {data.dtype})")
        return super().__new__(cls, data, requires_grad=requires_grad)

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (self.detach(), self.requires_grad))

    def __deepcopy__(self, memo):
        r = Parameter(self.detach().clone(), self.requires_grad)
        memo[id(self)] = r
        return r


def _rebuild_parameter(data, requires_grad):
    return Parameter(data, requires_grad)


class Buffer(_C.Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute."""

    def __new__(cls, data=None, persistent=True):
        if data is None:
            data = _C.zeros(0)
        t = super().__new__(cls, data)
        t.persistent = persistent
        return t
