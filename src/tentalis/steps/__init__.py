"""Reasoning steps: read ``<step>`` blocks, code blocks and final answers out of what a
model wrote, and compare answers with the ground truth.

Agents, environments and rewards all read a worker's text through this package, so they
read it the same way; it imports none of them.
"""

from tentalis.steps.answers import answers_match, final_answer_of, normalise_answer, numbers_equal
from tentalis.steps.code_blocks import (
    MAX_CODE_CHARS,
    fenced_blocks,
    file_blocks,
    last_code_block,
    raw_steps,
    tagged,
)
from tentalis.steps.numbers import extract_number, extract_numbers
from tentalis.steps.parsing import (
    AnswerSource,
    ParsedOutput,
    StepBlock,
    StepsStatus,
    clean_answer,
    find_step_blocks,
    parse_steps,
)
from tentalis.steps.results import failed_result, result_from_completion

__all__ = [
    "MAX_CODE_CHARS",
    "AnswerSource",
    "ParsedOutput",
    "StepBlock",
    "StepsStatus",
    "answers_match",
    "clean_answer",
    "extract_number",
    "extract_numbers",
    "failed_result",
    "fenced_blocks",
    "file_blocks",
    "final_answer_of",
    "find_step_blocks",
    "last_code_block",
    "normalise_answer",
    "numbers_equal",
    "parse_steps",
    "raw_steps",
    "result_from_completion",
    "tagged",
]
