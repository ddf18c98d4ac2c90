"""Math tasks and written solutions for calibrating a judge against the math verifier
(:mod:`tentalis.rewards.calibrate`)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from tentalis.envs.math.tasks import apply
from tentalis.envs.registry import get_environment
from tentalis.events import ResultEvent, TaskEvent


def calibration_tasks(
    n: int, *, level: str, seed: int, environment: str = "math"
) -> list[TaskEvent]:
    """``n`` held-out tasks with ground truth (the same ones for the same seed)."""
    specs = get_environment(environment).generate(n, split="heldout", seed=seed, level=level)
    return [s.to_task_event() for s in specs]


def reference_results(tasks: Sequence[TaskEvent], *, seed: int = 0) -> list[ResultEvent]:
    """Two written solutions per math task: a right one, and one with a planted slip.

    Steps: a sentence naming the numbers (no claim: the verifier is neutral on it), then
    one ``a op b = r`` step per operation. In the planted one a random operation's result
    is off by 1 to 3 and the error carries on to the answer, so the verifier marks exactly
    that step (and the outcome) wrong. Labels are balanced, unlike a weak worker's answers.
    """

    def solution(ops: list[str], operands: list[int], slip_at: int, slip: int) -> list[str]:
        steps, value = [f"The numbers are {', '.join(map(str, operands))}."], operands[0]
        for i, (op, x) in enumerate(zip(ops, operands[1:], strict=True)):
            new = apply(op, value, x) + (slip if i == slip_at else 0)
            steps.append(f"{value} {op} {x} = {new}")
            value = new
        return [*steps, str(value)]

    rng = random.Random(seed)
    out = []
    for task in tasks:
        ops, operands = task.metadata["ops"], task.metadata["operands"]
        slip = rng.choice([-3, -2, -1, 1, 2, 3])
        try:
            planted = solution(ops, operands, rng.randrange(len(ops)), slip)
        except ValueError:  # the slip made a later division inexact: slip at the last op
            planted = solution(ops, operands, len(ops) - 1, slip)
        for *steps, answer in (solution(ops, operands, -1, 0), planted):
            text = "".join(f"<step>{st}</step>\n" for st in steps) + f"Answer: {answer}"
            out.append(ResultEvent(
                task_id=task.task_id, task=task, worker_id="reference", raw_text=text,
                steps=steps, final_answer=answer, parse_status="ok"))
    return out
