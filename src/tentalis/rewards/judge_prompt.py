"""What the judge is asked: a short instruction, two worked examples, one item to check.

Kept tiny on purpose so that even SmolLM2-135M answers in the expected shape: the reply is
one line, ``Verdict: correct`` or ``Verdict: wrong``, optionally followed by
``Reason: …``. (On the math suite a ``Score: 0/1`` format made the 135M model copy numbers
from the step — ``Score: 23`` — while the verdict words came back parseable; see the
calibration report for how often.) The examples are chat turns, so the model sees the
format twice before it answers.

The worker's text is data, not instructions: it is cut to :data:`MAX_ITEM_CHARS`,
whitespace is collapsed (no fake turns or lines), and anything that looks like a verdict
(``Verdict:``, ``Score:``) is defused so the judge cannot copy a planted one.
"""

from __future__ import annotations

import re

from tentalis.inference.base import Message

MAX_ITEM_CHARS = 400
MAX_PROBLEM_CHARS = 300

SYSTEM = (
    "You check one step of a worked solution. Reply with one line: "
    "Verdict: correct or Verdict: wrong. Then one line: Reason: a few words."
)

# (problem, step, reply): a correct step, then a wrong one.
STEP_SHOTS: tuple[tuple[str, str, str], ...] = (
    ("What is 3 + 4?", "3 + 4 = 7", "Verdict: correct\nReason: 3 + 4 is 7."),
    ("What is 6 + 5?", "6 + 5 = 12", "Verdict: wrong\nReason: 6 + 5 is 11, not 12."),
)
ANSWER_SHOTS: tuple[tuple[str, str, str], ...] = (
    ("What is 9 - 4?", "5", "Verdict: correct\nReason: 9 - 4 is 5."),
    ("What is 2 * 8?", "10", "Verdict: wrong\nReason: 2 * 8 is 16."),
)

_VERDICT_LIKE = re.compile(r"\b(verdict|score|rating|reason)(\s*)[:=]", re.IGNORECASE)


def sanitise(text: str, limit: int = MAX_ITEM_CHARS) -> str:
    """The worker's text made safe to quote: one line, verdicts defused, at most ``limit``."""
    flat = re.sub(r"\s+", " ", text).strip()
    flat = _VERDICT_LIKE.sub(lambda m: f"{m.group(1)}{m.group(2)}-", flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _step_turn(problem: str, step: str) -> str:
    return f"Problem: {problem}\nStep: {step}\nIs this step correct?"


def _answer_turn(problem: str, answer: str) -> str:
    return f"Problem: {problem}\nFinal answer: {answer}\nIs this answer correct?"


def step_messages(problem: str, step: str) -> list[Message]:
    """The chat that asks the judge about one step of a solution to ``problem``."""
    messages: list[Message] = [{"role": "system", "content": SYSTEM}]
    for p, s, reply in STEP_SHOTS:
        messages += [
            {"role": "user", "content": _step_turn(p, s)},
            {"role": "assistant", "content": reply},
        ]
    messages.append(
        {"role": "user", "content": _step_turn(sanitise(problem, MAX_PROBLEM_CHARS),
                                               sanitise(step))}
    )
    return messages


def answer_messages(problem: str, answer: str) -> list[Message]:
    """The chat that asks the judge whether ``answer`` solves ``problem`` (the outcome)."""
    messages: list[Message] = [{"role": "system", "content": SYSTEM}]
    for p, a, reply in ANSWER_SHOTS:
        messages += [
            {"role": "user", "content": _answer_turn(p, a)},
            {"role": "assistant", "content": reply},
        ]
    messages.append(
        {"role": "user", "content": _answer_turn(sanitise(problem, MAX_PROBLEM_CHARS),
                                                 sanitise(answer))}
    )
    return messages
