"""Compare a final answer with the ground truth, and find a result's final answer.

The strict verifiers, the lenient math reward, the judge and the regex scorers read an
answer the same way, so what counts as "the answer" cannot drift between them.
"""

from __future__ import annotations

import math
import re

from tentalis.events import ResultEvent
from tentalis.steps.numbers import extract_number
from tentalis.steps.parsing import clean_answer, parse_steps


def normalise_answer(text: str) -> str:
    """Lower case, markdown and trailing punctuation stripped, whitespace collapsed."""
    return re.sub(r"\s+", " ", clean_answer(text)).strip().lower()


def numbers_equal(a: float, b: float) -> bool:
    """Equal within a relative tolerance of 1e-6 (absolute 1e-9 around zero)."""
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def answers_match(answer: str | None, truth: str) -> bool:
    """True when ``answer`` states ``truth``: numerically when both hold a number (the last
    one: ``"12 apples"`` and ``"5 + 7 = 12"`` both state 12), else exactly after
    :func:`normalise_answer`."""
    if answer is None:
        return False
    a, t = extract_number(answer), extract_number(truth)
    if a is not None and t is not None:
        return numbers_equal(a, t)
    return normalise_answer(answer) == normalise_answer(truth)


def final_answer_of(result: ResultEvent) -> str | None:
    """The result's parsed final answer; re-parsed from the raw text if the worker set none."""
    if result.final_answer is not None:
        return result.final_answer
    return parse_steps(result.raw_text).final_answer
