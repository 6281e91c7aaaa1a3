"""``deepseek.nn.utils``: gradient clipping and parameter/vector helpers."""

from ... import _C
from ..._grad_mode import no_grad


def _params(parameters):
    if isinstance(parameters, _C.Tensor):
        return [parameters]
    return [p for p in parameters]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales the gradients so their total ``norm_type``-norm is at most ``max_norm``;
    returns the total norm before clipping (a 0-d tensor)."""
    return _C.clip_grad_norm(_params(parameters), float(max_norm), float(norm_type),
                             error_if_nonfinite)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient element into ``[-clip_value, clip_value]``."""
    _C.clip_grad_value(_params(parameters), float(clip_value))


def parameters_to_vector(parameters):
    return _C.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    i = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[i:i + n].view(*p.shape))
            i += n
from . import rnn  # noqa: E402,F401
from . import prune  # noqa: E402,F401
