"""What an environment is: a source of tasks, the instructions a worker answers them
under, and the scorer that judges the answers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from tentalis.events import TaskEvent

if TYPE_CHECKING:
    from tentalis.rewards.base import StepScorer

Split = Literal["train", "heldout"]
SPLITS: tuple[Split, ...] = ("train", "heldout")

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
        from tentalis.rewards.registry import scorer_for  # lazy: rewards imports agents

        return scorer_for(self.name, spec)
