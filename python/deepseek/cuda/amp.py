"""``deepseek.cuda.amp``: the same ``GradScaler`` / ``autocast`` as ``deepseek.amp``
(working on the CPU; autocast casts nothing yet)."""

from .. import amp as _amp

GradScaler = _amp.GradScaler


class autocast(_amp.autocast):
    """``deepseek.cuda.amp.autocast(enabled=True, dtype=float16)``: a no-op region on the CPU
    backend (computation stays float32)."""

    def __init__(self, enabled=True, dtype=None, cache_enabled=True):
        super().__init__("cuda", dtype=dtype, enabled=enabled)


def custom_fwd(fn=None, **kwargs):
    if fn is None:
        return lambda f: f
    return fn


def custom_bwd(fn):
    return fn

