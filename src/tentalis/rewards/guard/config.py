"""``GuardConfig`` is the ``guard`` section of Settings; it lives in
:mod:`tentalis.config.guard` and is re-exported here for the guard package."""

from tentalis.config.guard import GuardConfig

__all__ = ["GuardConfig"]
