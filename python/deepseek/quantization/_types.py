"""Quantized dtypes and quantization schemes (``deepseek.qint8``, ``deepseek.per_tensor_affine``,
...), PyTorch's spelling."""


class _QDType:
    """A quantized dtype marker (``deepseek.qint8``, ``deepseek.quint8``)."""

    def __init__(self, name, qmin, qmax):
        self.name = name
        self.qmin = qmin
        self.qmax = qmax

    def __repr__(self):
        return f"deepseek.{self.name}"

    def __reduce__(self):
        return (_lookup_dtype, (self.name,))


class _QScheme:
    """A quantization scheme marker (``deepseek.per_tensor_affine``, ...)."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"deepseek.{self.name}"

    def __reduce__(self):
        return (_lookup_scheme, (self.name,))


qint8 = _QDType("qint8", -128, 127)
quint8 = _QDType("quint8", 0, 255)
per_tensor_affine = _QScheme("per_tensor_affine")
per_tensor_symmetric = _QScheme("per_tensor_symmetric")
per_channel_affine = _QScheme("per_channel_affine")
per_channel_symmetric = _QScheme("per_channel_symmetric")

_DTYPES = {"qint8": qint8, "quint8": quint8}
_SCHEMES = {s.name: s for s in (per_tensor_affine, per_tensor_symmetric, per_channel_affine,
                                per_channel_symmetric)}


def _lookup_dtype(name):
    return _DTYPES[name]


def _lookup_scheme(name):
    return _SCHEMES[name]


def is_per_channel(qscheme):
    return qscheme in (per_channel_affine, per_channel_symmetric)


def is_symmetric(qscheme):
    return qscheme in (per_tensor_symmetric, per_channel_symmetric)
