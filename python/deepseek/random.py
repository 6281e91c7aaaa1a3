"""``deepseek.random``: the global generator's functions (PyTorch's ``torch.random``)."""

import contextlib

from . import _C

Generator = _C.Generator
default_generator = _C.default_generator


def manual_seed(seed):
    """Seeds the global generator; returns ``default_generator``."""
    _C.manual_seed(seed)
    return default_generator


def seed():
    """Seeds the global generator from the operating system and returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The seed the global generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state():
    """The global generator's state as a uint8 tensor (deepseek's 40-byte layout)."""
    return default_generator.get_state()


def set_rng_state(new_state):
    """Restores the global generator from ``get_rng_state()`` (a uint8 tensor; the tuple of
    four ints that older deepseek versions returned is accepted too)."""
    if isinstance(new_state, tuple):
        _C.set_rng_state(new_state)
    else:
        default_generator.set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices",
             device_type="cuda"):
    """Runs the block and then restores the global generator's state, so random draws inside
    do not change the draws after it (CPU only: there are no CUDA generators to fork)."""
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
