"""Turn what a model wrote into steps and a final answer, without ever raising.

Small models do not follow formats reliably, so the parser accepts, in order of preference:

* steps: ``<step>…</step>`` blocks (any case, attributes such as ``<step n=1>``, an unclosed
  last block). Without tags it falls back to ``Step 1: …`` headers or numbered lines
  (``1. …`` / ``1) …``), and says so in :attr:`ParsedOutput.used_fallback`.
* the final answer: ``<answer>…</answer>``, ``\\boxed{…}``, ``Final answer: …``,
  ``Answer: …``, ``#### …``, and last ``the answer is …``. The value is cleaned of markdown,
  LaTeX ``$…$`` wrappers and trailing punctuation.

Numbers inside the text are read by :mod:`tentalis.steps.numbers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

StepsStatus = Literal["ok", "no_steps", "no_answer", "empty"]
AnswerSource = Literal["tag", "boxed", "final_answer", "answer", "hashes", "phrase"]

_FLAGS = re.IGNORECASE | re.DOTALL
_STEP_OPEN = re.compile(r"<\s*step\b[^>]*>", re.IGNORECASE)
_STEP_CLOSE = re.compile(r"<\s*/\s*step\s*>", re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<\s*answer\b[^>]*>(.*?)(?:<\s*/\s*answer\s*>|\Z)", _FLAGS)
# Written so that no two adjacent quantifiers can match the same characters: every regex
# here runs in linear time on adversarial text (long runs of spaces, digits or tags).
_ANSWER_LINE = re.compile(
    r"(?<![\w])(?P<label>final\s+answer|answer)\s*(?:\*+\s*)?[:：]\s*(?:\*+[ \t]*)?"
    r"(?P<value>[^\n]*)",
    re.IGNORECASE,
)
_HASHES = re.compile(r"^[ \t]*####[ \t]*(?P<value>[^\n]+)", re.MULTILINE)
_PHRASE = re.compile(r"\bthe\s+(?:final\s+)?answer\s+is\b\s*(?:[:：]\s*)?(?P<value>[^\n]+)", re.I)
_BOXED = re.compile(r"\\boxed\s*\{")
_STEP_HEADER = re.compile(r"^[ \t>*_#-]*step[ \t]*(\d+)[ \t]*(?:\*+[ \t]*)?[:.)\-–][ \t]*\**", re.I)
_NUMBERED = re.compile(r"^[ \t]*(\d+)[.)][ \t]+(?=\S)")
_SPECIAL_TOKEN = re.compile(r"<\|[^|>]*\|>")


@dataclass(frozen=True)
class StepBlock:
    """One ``<step>`` block as written: its text, whether it was closed, and its span."""

    text: str
    closed: bool
    start: int
    end: int


@dataclass(frozen=True)
class ParsedOutput:
    """Steps and final answer read from a model's text.

    ``status``: ``"empty"`` (blank text), ``"no_steps"`` (no steps found; ``final_answer`` may
    still be set), ``"no_answer"`` (steps but no final answer) or ``"ok"``.
    """

    steps: list[str]
    final_answer: str | None
    status: StepsStatus
    used_fallback: bool = False
    answer_source: AnswerSource | None = None
    blocks: list[StepBlock] = field(default_factory=list, repr=False)


def find_step_blocks(text: str) -> list[StepBlock]:
    """Every ``<step>`` block in ``text``; a block ends at its close tag, the next open tag,
    an ``<answer>`` tag, or the end of the text (then ``closed`` is False)."""
    blocks: list[StepBlock] = []
    opens = list(_STEP_OPEN.finditer(text))
    for i, m in enumerate(opens):
        limit = opens[i + 1].start() if i + 1 < len(opens) else len(text)
        close = _STEP_CLOSE.search(text, m.end(), limit)
        if close is not None:
            blocks.append(StepBlock(text[m.end() : close.start()], True, m.start(), close.end()))
            continue
        body = text[m.end() : limit]
        # An unclosed block stops where the answer starts.
        cut = len(body)
        for pattern in (_ANSWER_TAG, _ANSWER_LINE, _HASHES):
            hit = pattern.search(body)
            if hit is not None:
                cut = min(cut, hit.start())
        blocks.append(StepBlock(body[:cut], False, m.start(), m.end() + cut))
    return blocks


def _fallback_steps(text: str) -> list[str]:
    """``Step 1: …`` headers, else numbered lines; a step runs until the next header,
    a blank line after content, or the answer."""
    lines = text.splitlines()
    for header in (_STEP_HEADER, _NUMBERED):
        if not any(header.match(line) for line in lines):
            continue
        steps: list[str] = []
        current: list[str] | None = None
        for line in lines:
            if _ANSWER_LINE.match(line.strip(" \t*_>#-")) or _HASHES.match(line):
                break
            m = header.match(line)
            if m is not None:
                if current is not None:
                    steps.append(" ".join(current))
                current = [line[m.end() :].strip()]
            elif current is not None:
                if line.strip():
                    current.append(line.strip())
                else:
                    steps.append(" ".join(current))
                    current = None
        if current is not None:
            steps.append(" ".join(current))
        return [s.strip() for s in steps if s.strip()]
    return []


def _boxed_values(text: str) -> list[str]:
    """Contents of every closed ``\\boxed{…}``, nested braces matched (one linear pass)."""
    starts = {m.end() - 1 for m in _BOXED.finditer(text)}  # index of each boxed "{"
    if not starts:
        return []
    values: list[tuple[int, str]] = []
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            start = stack.pop()
            if start in starts:
                values.append((start, text[start + 1 : i]))
    return [v for _, v in sorted(values)]


def clean_answer(value: str) -> str:
    """Strip markdown, LaTeX wrappers, quotes and trailing punctuation from an answer."""
    value = _SPECIAL_TOKEN.sub("", value)
    value = re.sub(r"<\s*/?\s*(?:answer|step)\b[^>]*>", "", value, flags=re.I)
    boxed = _boxed_values(value)
    if boxed:
        value = boxed[-1]
    value = value.strip()
    for _ in range(3):  # peel nested wrappers: **$12$** → 12
        before = value
        value = value.strip(" \t*_`\"'")
        if len(value) >= 2 and value[0] == value[-1] == "$":
            value = value[1:-1]
        value = re.sub(r"^\\\(|\\\)$|^\\\[|\\\]$", "", value).strip()
        value = value.rstrip(".,;:!?。 ")
        if value == before:
            break
    return value


def _find_answer(text: str) -> tuple[str | None, AnswerSource | None]:
    tag = _ANSWER_TAG.search(text)
    if tag is not None and clean_answer(tag.group(1)):
        return clean_answer(tag.group(1)), "tag"
    boxed = [b for b in _boxed_values(text) if clean_answer(b)]
    if boxed:
        return clean_answer(boxed[-1]), "boxed"
    lines = list(_ANSWER_LINE.finditer(text))
    # "Final answer" beats "Answer"; the first "Answer:" beats later ones, because a small
    # model that runs on after answering tends to invent new questions and answers.
    for source, wanted in (("final_answer", True), ("answer", False)):
        for m in lines:
            if m.group("label").lower().startswith("final") != wanted:
                continue
            value = clean_answer(m.group("value"))  # "Answer:\n42" reads the next line
            if value:
                return value, source  # type: ignore[return-value]
    for pattern, source in ((_HASHES, "hashes"), (_PHRASE, "phrase")):
        m = pattern.search(text)
        if m is not None and clean_answer(m.group("value")):
            return clean_answer(m.group("value")), source  # type: ignore[return-value]
    return None, None


def parse_steps(text: str | None) -> ParsedOutput:
    """Read steps and the final answer from ``text``. Never raises."""
    if text is None or not _SPECIAL_TOKEN.sub("", text).strip():
        return ParsedOutput([], None, "empty")
    blocks = find_step_blocks(text)
    steps = [re.sub(r"\s+", " ", b.text).strip() for b in blocks]
    steps = [s for s in steps if s]
    used_fallback = False
    if not blocks:
        steps = _fallback_steps(text)
        used_fallback = bool(steps)
    answer, source = _find_answer(text)
    if not steps:
        status: StepsStatus = "no_steps"
    elif answer is None:
        status = "no_answer"
    else:
        status = "ok"
    return ParsedOutput(steps, answer, status, used_fallback, source, blocks)
