"""Seeded task suites with a hash-fixed held-out split, shared by the tool environments.

A builder draws one task from a random generator and names it by a *key* that captures
everything that makes it that task (template and parameters). As in ``math``, the split
is a function of the key alone (:func:`~tentalis.agents.environments.math.split_of`), so
a held-out task never appears in training, whatever the seed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tentalis.agents.environments.base import SPLITS, Environment, Split, TaskSpec
from tentalis.agents.environments.math import HELDOUT_FRACTION, split_of


@dataclass(frozen=True)
class Drawn:
    """One drawn task before its split is known."""

    key: str
    prompt: str
    answer: str
    metadata: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[random.Random], Drawn]


def seeded_suite(
    environment: str,
    builders: Sequence[Builder],
    n: int,
    split: Split,
    seed: int,
    heldout_fraction: float = HELDOUT_FRACTION,
) -> list[TaskSpec]:
    """``n`` distinct tasks of ``split``, the same list for the same arguments. Builders are
    used in turn (a round-robin from a seeded start) so every kind of task appears."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(f"{environment}:{seed}")
    offset = rng.randrange(len(builders))
    seen: set[str] = set()
    out: list[TaskSpec] = []
    budget = 2_000 + 100 * n
    i = 0
    while len(out) < n:
        budget -= 1
        if budget < 0:
            raise ValueError(f"found only {len(out)} distinct {split} {environment} tasks")
        drawn = builders[(offset + i) % len(builders)](rng)
        i += 1
        if drawn.key in seen or split_of(f"{environment}:{drawn.key}", heldout_fraction) != split:
            continue
        seen.add(drawn.key)
        meta = {**drawn.metadata, "key": drawn.key}
        out.append(TaskSpec(drawn.prompt, drawn.answer, environment, meta, split))
    return out


class SuiteEnvironment(Environment):
    """An environment whose tasks come from ``builders`` through :func:`seeded_suite`."""

    builders: ClassVar[tuple[Builder, ...]]

    def generate(
        self, n: int, split: Split = "train", seed: int = 0, **options: Any
    ) -> list[TaskSpec]:
        """``n`` distinct tasks of ``split``; the same ones for the same ``seed``."""
        if options:
            raise TypeError(f"unknown options for {self.name}: {sorted(options)}")
        return seeded_suite(self.name, self.builders, n, split, seed)
