"""What an environment is: a source of tasks, the instructions a worker answers them
under, and the scorer that judges the answers; and the seeded suite with a hash-fixed
held-out split that the tool environments share.

A suite's builder draws one task from a random generator and names it by a *key* that
captures everything that makes it that task (template and parameters). The split is a
function of the key alone (:func:`split_of`), so a held-out task never appears in
training, whatever the seed.
"""

from __future__ import annotations

import hashlib
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from tentalis.events import TaskEvent
from tentalis.rewards.base import StepScorer
from tentalis.rewards.registry import scorer_for

Split = Literal["train", "heldout"]
SPLITS: tuple[Split, ...] = ("train", "heldout")
HELDOUT_FRACTION = 0.2

STEP_SYSTEM_PROMPT = (
    "Solve the problem step by step. Write each step inside <step> and </step> tags, "
    "one step per pair of tags. After the last step, write the final answer on its own "
    "line as: Answer: <final answer>\n"
    "Example:\n"
    "<step>Tom has 3 apples and gets 4 more.</step>\n"
    "<step>3 + 4 = 7</step>\n"
    "Answer: 7"
)


@dataclass(frozen=True)
class TaskSpec:
    """One generated task: the prompt a worker sees and the ground truth it is scored by."""

    prompt: str
    answer: str
    environment: str
    metadata: dict[str, Any] = field(default_factory=dict)
    split: Split = "train"

    def to_task_event(self, **fields: Any) -> TaskEvent:
        """A TaskEvent for this spec; ``fields`` set or override any other TaskEvent field."""
        base: dict[str, Any] = {
            "prompt": self.prompt,
            "answer": self.answer,
            "environment": self.environment,
            "metadata": dict(self.metadata),
            "split": self.split,
        }
        return TaskEvent(**(base | fields))


class Environment(ABC):
    """A family of tasks. Subclasses set ``name`` and implement :meth:`generate`."""

    name: ClassVar[str]
    system_prompt: str = STEP_SYSTEM_PROMPT

    @abstractmethod
    def generate(
        self, n: int, split: Split = "train", seed: int = 0, **options: Any
    ) -> list[TaskSpec]:
        """``n`` distinct tasks of ``split``, the same ones for the same ``seed``.

        A task of one split never appears in the other, whatever the seed. ``options`` are
        environment-specific (math: ``level``).
        """

    def scorer(self, spec: str = "default") -> StepScorer:
        """The scorer for this environment's results (see ``tentalis.rewards.registry``)."""
        return scorer_for(self.name, spec)


def split_of(key: str, heldout_fraction: float = HELDOUT_FRACTION) -> Split:
    """``"heldout"`` for about ``heldout_fraction`` of all keys, fixed by SHA-256."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return "heldout" if digest / 2**64 < heldout_fraction else "train"


# --- seeded suites --------------------------------------------------------------------


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
