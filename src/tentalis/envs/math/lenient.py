"""``LenientMathScorer``: a math reward a weak base model can climb.

A strict verifier gives a 135M-parameter model an all-zero reward at the start of
training, and with no variance inside a rollout group there is no gradient. This reward
gives partial credit for getting near the goal::

    outcome = clip(0.4 * appears + 0.4 * correct + 0.2 * stated - 0.1 * no_steps, 0, 1)

* ``appears``: the ground-truth number is among the numbers of a *finished* response,
  anywhere. A response cut off at the length cap gets no ``appears`` credit: with it, a
  rambling answer that passed the right sum on its way to the cap outscored a short
  wrong one, so the group advantage pushed the finished answers down and the policy
  learned to ramble (held-out accuracy 10 % → 0 % within 5–10 steps of the demo, with
  truncated completions masked from the loss but still in the group's baseline);
* ``correct``: the final answer, read the way the strict verifier reads it (an
  ``Answer:`` line, ``####``, "the answer is …", ``\\boxed{}``), is the ground truth — what
  held-out accuracy counts. Without it, "… = 26.\\n#### 26" earned no more than an answer
  that mentions 26 and then states 2, though the verifier counts only the first;
* ``stated``: that correct answer is on an ``Answer:`` (or ``Final answer:``) line, the
  format the system prompt asks for;
* ``no_steps``: the result has no steps.

So a correct ``Answer:`` line after steps scores 1.0, a correct answer in another format
0.8, the right number somewhere but not as the answer 0.4, and nothing right 0.0.
Per-step scores are the arithmetic checks of :class:`~tentalis.envs.math.verifier.MathVerifier`
(1 / 0 / neutral 0.5).

No credit for the format alone: with the system prompt's worked example ("… Answer: 7")
in context, a format-only bonus was hacked within nine steps of the demo — the policy
learned to copy the example's ``Answer: 7`` whatever the question.

Listing many numbers can earn ``appears``: this reward is for bootstrapping, to be
replaced by the strict verifier once the model answers in format.
"""

from __future__ import annotations

from tentalis.envs.math.arithmetic import claim_score
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores, ground_truth
from tentalis.steps.answers import answers_match, final_answer_of, numbers_equal
from tentalis.steps.numbers import extract_number, extract_numbers
from tentalis.steps.parsing import parse_steps

APPEARS, CORRECT, STATED, NO_STEPS_PENALTY = 0.4, 0.4, 0.2, 0.1


class LenientMathScorer:
    """Partial credit for the right number anywhere; see the module docstring."""

    name = "lenient_math"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        truth = ground_truth(task, self.name)
        target = extract_number(truth)
        text = result.raw_text or ""
        cut_off = result.finish_reason == "length"
        if cut_off:
            appears = False
        elif target is not None:
            appears = any(numbers_equal(x, target) for x in extract_numbers(text))
        else:
            appears = truth.strip().lower() in text.lower()
        answer = final_answer_of(result)
        correct = answer is not None and answers_match(answer, truth)
        stated = correct and parse_steps(text).answer_source in ("answer", "final_answer")
        no_steps = not result.steps
        raw = (APPEARS * appears + CORRECT * correct + STATED * stated
               - NO_STEPS_PENALTY * no_steps)
        return StepScores(
            step_scores=[claim_score(step) for step in result.steps],
            outcome_score=min(1.0, max(0.0, raw)),
            details={"appears": appears, "correct": correct, "stated": stated,
                     "no_steps": no_steps, "cut_off": cut_off},
        )
