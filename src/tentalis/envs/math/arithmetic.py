"""Find and check the arithmetic claims in a reasoning step (``12 + 7 = 19``).

A claim is ``<expression> = <number>`` where the expression has at least one binary
operator among ``+ - * / × ÷ − – · ∗`` (and ``x`` between two numbers), with parentheses
allowed. Chains are read pairwise: ``3 + 4 = 7 + 2 = 9`` holds two claims, ``3 + 4 = 7``
and ``7 + 2 = 9``. A number written with ``k > 0`` decimals is accepted when it is the true
value rounded to ``k`` decimals (``10 / 3 = 3.33``); an integer must be exact (relative
tolerance 1e-6), so ``7 / 2 = 3`` is false. Division by zero is a false claim.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_OPS = {"+": "+", "-": "-", "−": "-", "–": "-", "*": "*", "×": "*", "·": "*", "∗": "*",
        "/": "/", "÷": "/"}  # fmt: skip
_TOKEN = re.compile(
    r"(?P<num>\$?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?)"
    r"|(?P<op>[-+*/×÷−–·∗])|(?P<lp>\()|(?P<rp>\))|(?P<eq>=)|(?P<space>\s+)|(?P<other>.)",
    re.DOTALL,
)
_TIMES_X = re.compile(r"(?<=[\d)])\s*[xX]\s*(?=\$?[\d(])")
_EXPR_KINDS = frozenset({"num", "op", "lp", "rp"})
MAX_TOKENS = 48  # longest left-hand side read; keeps checking linear on adversarial text


@dataclass(frozen=True)
class Claim:
    """One checked claim: ``expression = value``."""

    expression: str
    value: float
    actual: float | None  # None when undefined (division by zero)
    correct: bool


Token = tuple[str, str]  # (kind, text)


def _tokens(text: str) -> list[Token]:
    text = _TIMES_X.sub(" * ", text.replace("**", " ").replace("__", " "))
    out: list[Token] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind != "space":
            out.append((kind, m.group()))
    return out


def _number(text: str) -> float:
    return float(text.lstrip("$").replace(",", ""))


class _Parser:
    """Recursive descent over + - * / and parentheses, with unary signs."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> float:
        value = self._expr()
        if self.pos != len(self.tokens):
            raise ValueError("trailing tokens")
        return value

    def _peek(self) -> str | None:
        if self.pos >= len(self.tokens):
            return None
        kind, text = self.tokens[self.pos]
        return _OPS[text] if kind == "op" else kind

    def _expr(self) -> float:
        value = self._term()
        while self._peek() in ("+", "-"):
            op = self._peek()
            self.pos += 1
            rhs = self._term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def _term(self) -> float:
        value = self._factor()
        while self._peek() in ("*", "/"):
            op = self._peek()
            self.pos += 1
            rhs = self._factor()
            value = value * rhs if op == "*" else value / rhs
        return value

    def _factor(self) -> float:
        head = self._peek()
        if head in ("+", "-"):
            self.pos += 1
            return -self._factor() if head == "-" else self._factor()
        if head == "num":
            self.pos += 1
            return _number(self.tokens[self.pos - 1][1])
        if head == "lp":
            self.pos += 1
            value = self._expr()
            if self._peek() != "rp":
                raise ValueError("unbalanced parenthesis")
            self.pos += 1
            return value
        raise ValueError("expected a number")


def _has_binary_op(tokens: list[Token]) -> bool:
    return any(
        kind == "op" and tokens[i - 1][0] in ("num", "rp")
        for i, (kind, _) in enumerate(tokens)
        if i > 0
    )


def _left_expression(tokens: list[Token]) -> list[Token] | None:
    """The longest valid expression with a binary operator that ends the run."""
    for start in range(len(tokens)):
        candidate = tokens[start:]
        if not _has_binary_op(candidate):
            return None
        try:
            _Parser(candidate).parse()
        except ValueError:
            continue
        except ZeroDivisionError:
            pass  # a well-formed expression; the claim about it is false
        return candidate
    return None


def _right_number(tokens: list[Token]) -> tuple[float, int] | None:
    """The number right after ``=`` (with a sign), and how many decimals it was written with."""
    sign, i = 1.0, 0
    if i < len(tokens) and tokens[i][0] == "op" and _OPS[tokens[i][1]] == "-":
        sign, i = -1.0, 1
    if i < len(tokens) and tokens[i][0] == "num":
        text = tokens[i][1]
        decimals = len(text.split(".")[1]) if "." in text else 0
        return sign * _number(text), decimals
    return None


def _matches(actual: float, value: float, decimals: int) -> bool:
    if decimals > 0:
        return abs(actual - value) <= 0.5 * 10.0**-decimals + 1e-9
    return math.isclose(actual, value, rel_tol=1e-6, abs_tol=1e-9)


def find_claims(text: str) -> list[Claim]:
    """Every arithmetic claim in ``text``, checked."""
    tokens = _tokens(text)
    claims: list[Claim] = []
    for i, (kind, _) in enumerate(tokens):
        if kind != "eq":
            continue
        start = i
        while start > max(0, i - MAX_TOKENS) and tokens[start - 1][0] in _EXPR_KINDS:
            start -= 1
        end = i + 1
        while end < min(len(tokens), i + 3) and tokens[end][0] in _EXPR_KINDS:
            end += 1
        left = _left_expression(tokens[start:i])
        right = _right_number(tokens[i + 1 : end])
        if left is None or right is None:
            continue
        value, decimals = right
        expression = " ".join(text for _, text in left)
        try:
            actual: float | None = _Parser(left).parse()
        except ZeroDivisionError:
            actual = None
        correct = actual is not None and _matches(actual, value, decimals)
        claims.append(Claim(expression, value, actual, correct))
    return claims


NEUTRAL = 0.5


def claim_score(text: str) -> float:
    """1.0 when every claim in ``text`` holds, 0.0 when any is false, 0.5 (neutral) when
    ``text`` makes no checkable claim."""
    claims = find_claims(text)
    if not claims:
        return NEUTRAL
    return 1.0 if all(c.correct for c in claims) else 0.0
