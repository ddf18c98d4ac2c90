"""How the manager reviews a scored result: a score and one or two sentences of feedback.

``RuleReviewer`` writes the feedback from the scores themselves (which step failed a
check, whether the answer matched, whether the format was followed): cheap, exact, and
the default on CPU. ``LLMReviewer`` asks the model to write the feedback, grounded in the
same facts, for richer critiques (on-policy distillation uses this text as its hint).
"""

from __future__ import annotations

from typing import Protocol

from tentalis.events import ScoreEvent
from tentalis.inference.base import ChatRequest, InferenceClient

FAILED_STEP = 0.5  # a step scored below this is called out in the feedback


class Reviewer(Protocol):
    async def review(self, score: ScoreEvent) -> tuple[float, str]: ...


def _facts(score: ScoreEvent) -> list[str]:
    result = score.result
    task = result.task
    facts: list[str] = []
    if score.error:
        facts.append(f"The result could not be scored ({score.error}).")
        return facts
    if result.parse_status == "no_steps":
        facts.append("The answer did not show its reasoning in <step> blocks.")
    if result.final_answer is None:
        facts.append("No final answer was given on an 'Answer:' line.")
    elif task.answer is not None:
        if score.components.get("verifier", score.outcome_score) >= 1.0:
            facts.append(f"The final answer {result.final_answer} is correct.")
        else:
            facts.append(
                f"The final answer {result.final_answer} is wrong; the expected answer "
                f"is {task.answer}."
            )
    bad = [i for i, s in enumerate(score.step_scores) if s < FAILED_STEP]
    if bad and bad[0] < len(result.steps):
        step = result.steps[bad[0]].strip().replace("\n", " ")
        facts.append(f"Step {bad[0] + 1} has an error: \"{step[:120]}\".")
    return facts


class RuleReviewer:
    """Feedback assembled from the scorer's findings (deterministic)."""

    async def review(self, score: ScoreEvent) -> tuple[float, str]:
        facts = _facts(score)
        if not facts:
            facts = ["The steps check out and the answer is in the requested format."]
        return score.outcome_score, " ".join(facts[:2])


class LLMReviewer:
    """The model writes the feedback, given the task, the answer and the scorer's facts."""

    def __init__(self, inference: InferenceClient, adapter: str | None = None) -> None:
        self.inference = inference
        self.adapter = adapter

    async def review(self, score: ScoreEvent) -> tuple[float, str]:
        result = score.result
        facts = " ".join(_facts(score)) or "No problems were found."
        prompt = (
            f"Task: {result.task.prompt}\n\nWorker's answer:\n{result.raw_text[:1500]}\n\n"
            f"Checks: {facts}\n\nWrite one or two sentences of feedback to the worker: "
            "what was right, what to fix."
        )
        [out] = await self.inference.chat(
            [
                ChatRequest(
                    messages=[
                        {"role": "system", "content": "You are a strict, helpful reviewer."},
                        {"role": "user", "content": prompt},
                    ],
                    max_tokens=80,
                    temperature=0.0,
                    adapter=self.adapter,
                    logprobs=False,
                )
            ]
        )
        text = out.text.strip() or facts
        return score.outcome_score, text
