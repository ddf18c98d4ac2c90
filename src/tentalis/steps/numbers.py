"""Read numbers out of free text: ``"$1,234.50"``, ``"-3"``, ``"3/4"``, ``"12 apples"``,
``"twelve"``. Never raises."""

from __future__ import annotations

import re

_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-−–])?\$?(?P<neg2>[-−])?"
    r"(?:(?P<mixed>\d+)\s+(?=\d+/\d))?"
    r"(?:(?P<num>\d+)/(?P<den>\d+)(?![\d.,]*\d)"
    r"|(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<dec>\.\d+)?"
    r"|(?P<deconly>\.\d+))"
)
_FRAC = re.compile(r"\\d?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}")
# fmt: off
_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen", "twenty")
# fmt: on
_TENS = ("thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_WORDS = {w: i for i, w in enumerate(_UNITS)} | {w: 30 + 10 * i for i, w in enumerate(_TENS)}


def extract_numbers(text: str | None) -> list[float]:
    """Every number in ``text``, in order. Handles thousands commas, decimals, negatives,
    ``$`` prefixes, fractions (``3/4``, ``1 1/2``, ``\\frac{3}{4}``) and, only when the text
    has no digits at all, number words up to twenty and the tens."""
    if not text:
        return []
    text = _FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    values: list[float] = []
    for m in _NUMBER.finditer(text):
        sign = -1.0 if (m.group("neg") or m.group("neg2")) else 1.0
        if m.group("den") is not None:
            den = int(m.group("den"))
            if den == 0:
                continue
            value = int(m.group("num")) / den + int(m.group("mixed") or 0)
        elif m.group("deconly") is not None:
            value = float(m.group("deconly"))
        else:
            value = float(m.group("int").replace(",", "") + (m.group("dec") or ""))
        values.append(sign * value)
    if not values and not re.search(r"\d", text):
        values = [float(_WORDS[w]) for w in re.findall(r"[a-z]+", text.lower()) if w in _WORDS]
    return values


def extract_number(text: str | None) -> float | None:
    """The last number in ``text`` (an answer like ``"5 + 7 = 12"`` ends with its result),
    or None when there is none."""
    values = extract_numbers(text)
    return values[-1] if values else None
