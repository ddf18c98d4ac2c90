"""Reading a judge's reply: one verdict in [0, 1] and a short reason, or "malformed".

Accepted verdicts, case-insensitive, after ``Verdict``, ``Score`` or ``Rating`` and ``:``
or ``=`` (markdown emphasis around them is ignored):

* words: ``correct right yes true valid pass good`` → 1.0;
  ``wrong incorrect no false invalid fail bad`` → 0.0;
* a number in [0, 1] (``0.7``), a percentage (``70%``) or a fraction ``a/b`` with
  ``0 <= a <= b`` (``7/10``).

A reply that is nothing but such a value (``correct``, ``1``) is accepted too. Anything
else is malformed, with the reason: empty output, no verdict, a number out of range
(``Score: 7``), or conflicting verdicts (``Score: 1 … Score: 0``, e.g. when the judge
echoes a verdict planted in the step it reads). Only the first :data:`MAX_READ` characters
are read, so a runaway reply costs nothing. The reason is the text after ``Reason:``, else
the reply without its verdict, cut to :data:`MAX_REASON` characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_READ = 2000
MAX_REASON = 160

POSITIVE = frozenset({"correct", "right", "yes", "true", "valid", "pass", "good"})
NEGATIVE = frozenset({"wrong", "incorrect", "no", "false", "invalid", "fail", "bad"})

_VALUE = r"[-+]?\d+(?:\.\d+)?\s*(?:%|/\s*\d+(?:\.\d+)?)?|[a-z]+"
_TAGGED = re.compile(
    rf"(?:verdict|score|rating)[\s*_]*[:=][\s*_]*(?P<value>{_VALUE})", re.IGNORECASE
)
_BARE = re.compile(rf"^[\s*_>#-]*(?P<value>{_VALUE})[\s*_.!]*$", re.IGNORECASE)
_REASON = re.compile(r"reason[\s*_]*[:=][\s*_]*(?P<reason>[^\n]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Judgement:
    """One parsed judge reply: ``score`` is None exactly when ``malformed`` says why."""

    score: float | None
    reason: str = ""
    malformed: str | None = None

    @property
    def ok(self) -> bool:
        return self.malformed is None


def verdict_value(token: str) -> float | str:
    """The score a verdict token stands for, or a string saying why it stands for none."""
    t = token.strip().lower().replace(" ", "")
    if t in POSITIVE:
        return 1.0
    if t in NEGATIVE:
        return 0.0
    try:
        if t.endswith("%"):
            value = float(t[:-1]) / 100.0
        elif "/" in t:
            num, den = (float(x) for x in t.split("/", 1))
            if den <= 0 or not 0 <= num <= den:
                return f"fraction {token.strip()!r} is not in [0, 1]"
            value = num / den
        else:
            value = float(t)
    except ValueError:
        return f"unknown verdict {token.strip()[:20]!r}"
    if not 0.0 <= value <= 1.0:
        return f"score {token.strip()!r} is out of range [0, 1]"
    return value


def _reason(text: str, verdict_span: tuple[int, int] | None) -> str:
    m = _REASON.search(text)
    if m:
        reason = m.group("reason")
    elif verdict_span is not None:
        reason = text[: verdict_span[0]] + " " + text[verdict_span[1] :]
    else:
        reason = text
    reason = re.sub(r"\s+", " ", reason).strip(" .*_-:")
    return reason[:MAX_REASON]


def parse_judgement(text: str | None) -> Judgement:
    """Parse one judge reply (never raises); see the module docstring for the grammar."""
    body = (text or "")[:MAX_READ].strip()
    if not body:
        return Judgement(None, malformed="empty output")
    tagged = list(_TAGGED.finditer(body))
    if tagged:
        values = [verdict_value(m.group("value")) for m in tagged]
        numbers = [v for v in values if isinstance(v, float)]
        if not numbers:
            return Judgement(None, _reason(body, None), malformed=str(values[0]))
        if len(set(numbers)) > 1:
            return Judgement(None, _reason(body, None), malformed="conflicting verdicts")
        first = next(m for m, v in zip(tagged, values, strict=True) if isinstance(v, float))
        return Judgement(numbers[0], _reason(body, first.span()))
    first_line = body.splitlines()[0]
    bare = _BARE.match(first_line)
    if bare:
        value = verdict_value(bare.group("value"))
        if isinstance(value, float):
            return Judgement(value, _reason(body[len(first_line) :], None))
        return Judgement(None, malformed=value)
    return Judgement(None, _reason(body, None), malformed="no verdict")
