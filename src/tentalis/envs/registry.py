"""Environments by name: ``get_environment("math")``, ``get_environment("math:addition")``.

The registry starts empty; :func:`load_environments` fills it: the scorers every
environment can use, the built-in environments, then every entry point of the group
``tentalis.environments``. Nothing registers as a side effect of an import.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from tentalis.envs.base import Environment
from tentalis.errors import ConfigError

ENTRY_POINT_GROUP = "tentalis.environments"

EnvironmentFactory = Callable[..., Environment]

_FACTORIES: dict[str, EnvironmentFactory] = {}
_builtins_loaded = False
_entry_points_loaded: set[tuple[str, str]] = set()  # (name, value) of each one called


def register_environment(name: str, factory: EnvironmentFactory) -> None:
    """Make ``get_environment(name, **options)`` return ``factory(**options)``."""
    _FACTORIES[name] = factory
    _cached.cache_clear()


def environment_names() -> list[str]:
    return sorted(_FACTORIES)


def _register_builtins() -> None:
    from tentalis.envs import gui, swe, terminal
    from tentalis.envs import math as math_env
    from tentalis.rewards.builtins import register_builtin_scorers

    register_builtin_scorers()
    for package in (math_env, terminal, swe, gui):
        package.register()


def _call_entry_point(ep: EntryPoint) -> None:
    try:
        register = ep.load()
        register()
    except Exception as exc:
        raise ConfigError(
            f"environment entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r} "
            f"failed to load: {type(exc).__name__}: {exc}"
        ) from exc


def load_environments() -> list[str]:
    """Register the built-in environments and their scorers, then call every entry point of
    the group ``tentalis.environments``; the names of the registered environments.

    Idempotent: the built-ins are registered once and each entry point is called once, so
    calling it again only picks up entry points installed since. An entry point that fails
    to load raises :class:`ConfigError` naming it.
    """
    global _builtins_loaded
    if not _builtins_loaded:
        _register_builtins()
        _builtins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value)
        if key not in _entry_points_loaded:
            _call_entry_point(ep)
            _entry_points_loaded.add(key)
    return environment_names()


@cache
def _cached(name: str) -> Environment:
    base, _, level = name.partition(":")
    return _create(base, **({"level": level} if level else {}))


def _create(name: str, **options: Any) -> Environment:
    factory = _FACTORIES.get(name)
    if factory is None:
        hint = "" if _FACTORIES else " (none registered: call tentalis.envs.load_environments())"
        raise KeyError(f"unknown environment {name!r}; known: {environment_names()}{hint}")
    return factory(**options)


def get_environment(name: str, **options: Any) -> Environment:
    """The environment called ``name``; ``"math:addition"`` is ``math`` with
    ``level="addition"``. Without ``options`` the instance is shared (environments hold no
    mutable state). Raises KeyError naming the known environments."""
    if options:
        base, _, level = name.partition(":")
        return _create(base, **({"level": level} if level else {}), **options)
    return _cached(name)
