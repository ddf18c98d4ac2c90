"""Environments by name: ``get_environment("math")``, ``get_environment("math:addition")``."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from tentalis.agents.environments.base import Environment
from tentalis.agents.environments.gui import GuiTasks
from tentalis.agents.environments.math import ArithmeticWordProblems
from tentalis.agents.environments.swe import SweTasks
from tentalis.agents.environments.terminal import TerminalTasks
from tentalis.agents.environments.tool_scorers import register_tool_scorers

EnvironmentFactory = Callable[..., Environment]

_FACTORIES: dict[str, EnvironmentFactory] = {
    "math": ArithmeticWordProblems,
    "terminal": TerminalTasks,
    "swe": SweTasks,
    "gui": GuiTasks,
}
register_tool_scorers()  # their scorers, by the same names (see tool_scorers)


def register_environment(name: str, factory: EnvironmentFactory) -> None:
    """Make ``get_environment(name, **options)`` return ``factory(**options)``."""
    _FACTORIES[name] = factory
    _cached.cache_clear()


def environment_names() -> list[str]:
    return sorted(_FACTORIES)


@cache
def _cached(name: str) -> Environment:
    base, _, level = name.partition(":")
    return _create(base, **({"level": level} if level else {}))


def _create(name: str, **options: Any) -> Environment:
    factory = _FACTORIES.get(name)
    if factory is None:
        raise KeyError(f"unknown environment {name!r}; known: {environment_names()}")
    return factory(**options)


def get_environment(name: str, **options: Any) -> Environment:
    """The environment called ``name``; ``"math:addition"`` is ``math`` with
    ``level="addition"``. Without ``options`` the instance is shared (environments hold no
    mutable state). Raises KeyError naming the known environments."""
    if options:
        base, _, level = name.partition(":")
        return _create(base, **({"level": level} if level else {}), **options)
    return _cached(name)
