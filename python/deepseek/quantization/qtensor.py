"""Per-tensor quantized tensors: what flows between the layers of a statically quantized model
(PyTorch's ``torch.quint8`` tensors made by ``torch.quantize_per_tensor``).

A ``QuantizedTensor`` holds the uint8 integers (``int_repr()``), one scale (``q_scale()``)
and one zero point (``q_zero_point()``); ``dequantize()`` gives ``scale · (q − zero_point)``.
Shape methods (``view``, ``reshape``, ``flatten``, ``permute``, ``size``, ...) act on the
integers and keep the quantization.
"""

from .. import _C
from ._types import per_tensor_affine, quint8

__all__ = ["QuantizedTensor", "quantize_per_tensor", "dequantize"]


class QuantizedTensor:
    """A uint8 tensor with one scale and zero point (``deepseek.quint8``)."""

    is_quantized = True

    def __init__(self, int_repr, scale, zero_point):
        self._q = int_repr
        self._scale = float(scale)
        self._zero_point = int(zero_point)

    # --- PyTorch's quantized-tensor accessors
    def int_repr(self):
        """The uint8 integers."""
        return self._q

    def q_scale(self):
        return self._scale

    def q_zero_point(self):
        return self._zero_point

    def qscheme(self):
        return per_tensor_affine

    @property
    def dtype(self):
        return quint8

    def dequantize(self):
        """``scale · (q − zero_point)`` as float32."""
        return _C.dequantize_u8(self._q, self._scale, self._zero_point)

    # --- shape
    @property
    def shape(self):
        return self._q.shape

    def size(self, dim=None):
        return self._q.size() if dim is None else self._q.size(dim)

    def dim(self):
        return self._q.dim()

    def numel(self):
        return self._q.numel()

    def _wrap(self, q):
        return QuantizedTensor(q, self._scale, self._zero_point)

    def view(self, *shape):
        return self._wrap(self._q.reshape(*shape))

    def reshape(self, *shape):
        return self._wrap(self._q.reshape(*shape))

    def flatten(self, start_dim=0, end_dim=-1):
        return self._wrap(self._q.flatten(start_dim, end_dim))

    def permute(self, *dims):
        return self._wrap(self._q.permute(*dims).contiguous())

    def contiguous(self):
        return self._wrap(self._q.contiguous())

    def detach(self):
        return self

    def __getitem__(self, idx):
        return self._wrap(self._q[idx].contiguous())

    def __len__(self):
        return len(self._q)

    def __repr__(self):
        return (f"{self.dequantize()!r}, size={tuple(self.shape)}, dtype=deepseek.quint8, "
                f"quantization_scheme=deepseek.per_tensor_affine, scale={self._scale}, "
                f"zero_point={self._zero_point}")


def quantize_per_tensor(input, scale, zero_point, dtype=quint8):
    """``clamp(round(x / scale) + zero_point, 0, 255)`` as a ``QuantizedTensor``
    (``torch.quantize_per_tensor``; only ``deepseek.quint8``). Errors on NaN/infinite values,
    a non-positive scale or a zero point outside [0, 255]."""
    if dtype is not quint8:
        raise ValueError(f"quantize_per_tensor: only deepseek.quint8 is supported, got {dtype!r}")
    scale, zero_point = float(scale), int(zero_point)
    return QuantizedTensor(_C.quantize_per_tensor_u8(input, scale, zero_point), scale,
                           zero_point)


def dequantize(x):
    """``x.dequantize()`` for a ``QuantizedTensor``; float tensors are returned as they are."""
    return x.dequantize() if isinstance(x, QuantizedTensor) else x
