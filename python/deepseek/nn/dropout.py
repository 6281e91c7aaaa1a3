"""Channel-wise dropout layers (``Dropout1d``, ``Dropout2d``, ``Dropout3d``): in training,
each channel of each sample is zeroed with probability ``p`` as a whole and the rest are
scaled by ``1 / (1 - p)``, as in PyTorch."""

from . import functional as F
from .module import Module

__all__ = ["Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    _fn = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, x):
        return type(self)._fn(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of [N, C, L] (or [C, L]) inputs."""

    _fn = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zeroes whole channels of [N, C, H, W] (or [C, H, W]) inputs."""

    _fn = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zeroes whole channels of [N, C, D, H, W] (or [C, D, H, W]) inputs."""

    _fn = staticmethod(F.dropout3d)
