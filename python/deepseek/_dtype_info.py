"""``deepseek.finfo`` / ``deepseek.iinfo``: the numerical limits of a dtype, with
``torch.finfo`` / ``torch.iinfo``'s attributes (values from numpy's tables; bfloat16,
which numpy lacks, from its definition: 8 exponent bits and 7 mantissa bits)."""

import numpy as np

from . import _C

__all__ = ["finfo", "iinfo"]


def _name(dtype):
    return str(dtype).split(".")[-1]


class finfo:  # noqa: N801  (torch's spelling)
    """Limits of a floating-point dtype: ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (=
    ``smallest_normal``), ``resolution``, ``dtype``. ``finfo()`` is the default dtype's
    (float32)."""

    def __init__(self, type=None):
        dt = _C.float32 if type is None else type
        name = _name(dt)
        if name == "bfloat16":
            self.bits, self.eps = 16, 2.0 ** -7
            self.max = float((2 - 2.0 ** -7) * 2.0 ** 127)
            self.tiny = 2.0 ** -126
            self.resolution = 0.01
        elif name in ("float16", "float32", "float64"):
            f = np.finfo(getattr(np, name))
            self.bits, self.eps, self.max = int(f.bits), float(f.eps), float(f.max)
            self.tiny, self.resolution = float(f.smallest_normal), 10.0 ** -int(f.precision)
        else:
            raise TypeError(f"finfo: expected a floating-point dtype, got {dt}")
        self.min = -self.max
        self.smallest_normal = self.tiny
        self.dtype = name

    def __repr__(self):
        return (f"finfo(resolution={self.resolution}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.tiny:g}, tiny={self.tiny:g}, "
                f"dtype={self.dtype})")


class iinfo:  # noqa: N801
    """Limits of an integer dtype: ``bits``, ``max``, ``min``, ``dtype`` (bool is refused as
    in PyTorch)."""

    def __init__(self, type):
        name = _name(type)
        if name not in ("uint8", "int32", "int64", "int16", "int8"):
            raise TypeError(f"iinfo: expected an integer dtype, got {type}")
        i = np.iinfo(getattr(np, name))
        self.bits, self.max, self.min, self.dtype = int(i.bits), int(i.max), int(i.min), name

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
