"""``FormatScorer``: did the model write what the system prompt asked for?

The requested format is reasoning in ``<step>…</step>`` blocks, then one line
``Answer: <final answer>``, then nothing. Partial credit, summed into the outcome:

=====  =================================================================================
0.4    steps are in ``<step>`` tags, every block closed (0.2 when some block is unclosed)
0.3    there is a line starting ``Answer:`` (or ``Final answer:``) with a value
0.2    there is at least one block and no block is empty
0.1    nothing but whitespace (or special tokens such as ``<|im_end|>``) after that line
=====  =================================================================================

Per step: 1.0 for the text of a closed, non-empty ``<step>`` block; 0.5 for a non-empty
step that was not (an unclosed block, or a ``Step 1:`` line the parser fell back to); 0.0
for an empty one.
"""

from __future__ import annotations

import re

from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores
from tentalis.steps.parsing import find_step_blocks

W_TAGS, W_ANSWER_LINE, W_NONEMPTY, W_NOTHING_AFTER = 0.4, 0.3, 0.2, 0.1

_ANSWER_LINE = re.compile(
    r"^[ \t*_>#-]*(?:final[ \t]+)?answer[ \t]*(?:\*+[ \t]*)?[:：][ \t]*(?:\*+[ \t]*)?[^\s*][^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_SPECIAL_TOKEN = re.compile(r"<\|[^|>]*\|>")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class FormatScorer:
    """Rewards the ``<step>`` / ``Answer:`` format; see the module docstring for the credit."""

    name = "format"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        text = result.raw_text or ""
        blocks = find_step_blocks(text)
        closed = {_norm(b.text) for b in blocks if b.closed and _norm(b.text)}
        all_closed = bool(blocks) and all(b.closed for b in blocks)
        answer = _ANSWER_LINE.search(text)
        after = _SPECIAL_TOKEN.sub("", text[answer.end() :]).strip() if answer else None

        checks = {
            "tags": W_TAGS if all_closed else (W_TAGS / 2 if blocks else 0.0),
            "answer_line": W_ANSWER_LINE if answer else 0.0,
            "nonempty_steps": W_NONEMPTY if blocks and all(_norm(b.text) for b in blocks) else 0.0,
            "nothing_after_answer": W_NOTHING_AFTER if answer and not after else 0.0,
        }
        step_scores = [
            0.0 if not _norm(step) else 1.0 if _norm(step) in closed else 0.5
            for step in result.steps
        ]
        outcome = min(1.0, round(sum(checks.values()), 9))
        return StepScores(step_scores=step_scores, outcome_score=outcome, details=checks)
