"""``deepseek.utils``: ``deepseek.utils.data``."""

from . import data  # noqa: F401
