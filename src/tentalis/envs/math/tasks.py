"""Arithmetic word problems: procedurally generated, seeded, with verifiable integer answers.

A :class:`ProblemTemplate` is a story with slots and a chain of operations: ops
``("*", "+")`` over operands ``(a, b, c)`` means the answer is ``(a * b) + c``. Operands are
sampled so that every intermediate and final value is a positive integer (subtraction never
goes below 1, division is exact).

Levels (default number range in brackets):

* ``addition`` — ``a + b``: "What is a + b?" and short stories [2, 30];
* ``one_step`` — one of + − × ÷ [2, 50];
* ``two_step`` — two chained operations [2, 30].

The number range bounds both operands of + and − (one-step), the multiplicand, the quotient
and an added third number; multipliers and divisors are 2..``max_factor``, and a subtracted
third number is below the running total.

**Held-out split.** A problem's split is fixed by a stable hash (SHA-256) of its
arithmetic — the operations and operands, with the operands of a commutative first step
sorted — not by the seed, the story or the names. About ``heldout_fraction`` (20%) of all
problems are held out, and ``3 + 5`` told as any story, at any level, with any seed, is
always in the same split, so no training sample can contain a held-out problem (for the
same ``heldout_fraction``; a smaller fraction holds out a subset of a larger one's).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from tentalis.envs.base import HELDOUT_FRACTION, Environment, Split, TaskSpec, split_of

Level = Literal["addition", "one_step", "two_step"]
LEVEL_RANGES: dict[str, tuple[int, int]] = {
    "addition": (2, 30),
    "one_step": (2, 50),
    "two_step": (2, 30),
}

# fmt: off
NAMES = ("Ava", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Jade",
         "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")
ITEMS = ("apples", "marbles", "stickers", "pencils", "cookies", "books", "cards", "shells",
         "stamps", "crayons", "oranges", "balloons")
# fmt: on


@dataclass(frozen=True)
class ProblemTemplate:
    """A story over operands ``a, b, c`` (slots ``{name} {friend} {items}`` too) whose
    answer is the left-to-right chain of ``ops``."""

    id: str
    ops: tuple[str, ...]
    text: str
    levels: frozenset[str]


def _t(id: str, ops: str, text: str, *levels: str) -> ProblemTemplate:
    return ProblemTemplate(id, tuple(ops), text, frozenset(levels))


# fmt: off
TEMPLATES: tuple[ProblemTemplate, ...] = (
    _t("add_what_is", "+", "What is {a} + {b}?", "addition", "one_step"),
    _t("add_gets_more", "+", "{name} has {a} {items}. {friend} gives {name} {b} more {items}. "
       "How many {items} does {name} have now?", "addition", "one_step"),
    _t("add_two_times", "+", "{name} picked {a} {items} in the morning and {b} {items} in the "
       "afternoon. How many {items} did {name} pick in all?", "addition", "one_step"),
    _t("add_together", "+", "{name} has {a} {items} and {friend} has {b} {items}. How many "
       "{items} do they have together?", "addition", "one_step"),
    _t("sub_gives_away", "-", "{name} has {a} {items} and gives {b} of them to {friend}. How "
       "many {items} does {name} have left?", "one_step"),
    _t("sub_spends", "-", "{name} has {a} dollars and spends {b} dollars at the fair. How many "
       "dollars does {name} have left?", "one_step"),
    _t("mul_boxes", "*", "There are {a} boxes with {b} {items} in each box. How many {items} "
       "are there in total?", "one_step"),
    _t("mul_price", "*", "{name} buys {a} {items} that cost {b} dollars each. How many dollars "
       "does {name} spend?", "one_step"),
    _t("div_share", "/", "{name} shares {a} {items} equally among {b} friends. How many "
       "{items} does each friend get?", "one_step"),
    _t("div_bags", "/", "{name} packs {a} {items} into bags of {b}. How many bags does {name} "
       "fill?", "one_step"),
    _t("mul_add", "*+", "{name} buys {a} packs of {items} with {b} {items} in each pack. "
       "{friend} gives {name} {c} more {items}. How many {items} does {name} have now?",
       "two_step"),
    _t("add_sub", "+-", "{name} has {a} {items} and finds {b} more. Then {name} gives {c} "
       "{items} to {friend}. How many {items} does {name} have left?", "two_step"),
    _t("mul_sub", "*-", "A shop has {a} boxes with {b} {items} in each box. It sells {c} "
       "{items}. How many {items} are left?", "two_step"),
    _t("add_mul", "+*", "Each bag holds {a} red {items} and {b} blue {items}. How many {items} "
       "are in {c} bags?", "two_step"),
    _t("add_div", "+/", "{name} has {a} {items} and {friend} has {b} {items}. They put them "
       "together and share them equally among {c} children. How many {items} does each "
       "child get?", "two_step"),
    _t("div_add", "/+", "{name} shares {a} {items} equally among {b} friends. {friend}, one "
       "of them, already had {c} {items}. How many {items} does {friend} have now?",
       "two_step"),
    _t("sub_mul", "-*", "{name} had {a} {items} and lost {b}. {friend} has {c} times as many "
       "{items} as {name} has now. How many {items} does {friend} have?", "two_step"),
)
# fmt: on


def apply(op: str, x: int, y: int) -> int:
    """One exact integer operation; raises ValueError on inexact division."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        if y == 0 or x % y:
            raise ValueError(f"{x} / {y} is not exact")
        return x // y
    raise ValueError(f"unknown operation {op!r}")


def solve(ops: Sequence[str], operands: Sequence[int]) -> int:
    """The left-to-right chain: ``solve(("*", "+"), (a, b, c)) == a * b + c``."""
    value = operands[0]
    for op, x in zip(ops, operands[1:], strict=True):
        value = apply(op, value, x)
    return value


def _first_step(op: str, rng: random.Random, lo: int, hi: int, k: int) -> tuple[int, int]:
    if op == "+":
        return rng.randint(lo, hi), rng.randint(lo, hi)
    if op == "-":
        a = rng.randint(lo + 1, hi)
        return a, rng.randint(lo, a - 1)
    if op == "*":
        return rng.randint(lo, hi), rng.randint(2, k)
    divisor = rng.randint(2, k)
    return divisor * rng.randint(lo, hi), divisor


def _next_operand(op: str, value: int, rng: random.Random, lo: int, hi: int, k: int) -> int | None:
    """An operand that keeps the chain a positive integer, or None when there is none."""
    if op == "+":
        return rng.randint(lo, hi)
    if op == "-":
        return rng.randint(1, value - 1) if value >= 2 else None
    if op == "*":
        return rng.randint(2, k)
    divisors = [d for d in range(2, k + 1) if value % d == 0]
    return rng.choice(divisors) if divisors else None


def sample_operands(
    ops: Sequence[str], rng: random.Random, lo: int, hi: int, max_factor: int = 12
) -> tuple[int, ...] | None:
    """Operands for ``ops`` with every value a positive integer; None when a draw fails."""
    a, b = _first_step(ops[0], rng, lo, hi, max_factor)
    operands = [a, b]
    value = apply(ops[0], a, b)
    for op in ops[1:]:
        x = _next_operand(op, value, rng, lo, hi, max_factor)
        if x is None:
            return None
        operands.append(x)
        value = apply(op, value, x)
    return tuple(operands)


def canonical_key(ops: Sequence[str], operands: Sequence[int]) -> str:
    """The problem's arithmetic as a string; ``3 + 5`` and ``5 + 3`` give the same key."""
    first = list(operands[:2])
    if ops[0] in ("+", "*"):
        first.sort()
    return "".join(ops) + ":" + ",".join(map(str, [*first, *operands[2:]]))


class ArithmeticWordProblems(Environment):
    """The ``math`` environment: seeded arithmetic word problems with a fixed held-out split."""

    name: ClassVar[str] = "math"

    def __init__(
        self,
        level: Level = "one_step",
        *,
        number_range: tuple[int, int] | None = None,
        max_factor: int = 12,
        heldout_fraction: float = HELDOUT_FRACTION,
        templates: Sequence[ProblemTemplate] = TEMPLATES,
    ) -> None:
        if level not in LEVEL_RANGES:
            raise ValueError(f"unknown level {level!r}; choose one of {sorted(LEVEL_RANGES)}")
        if number_range is not None and not 1 <= number_range[0] < number_range[1]:
            raise ValueError(f"number_range must be (lo, hi) with 1 <= lo < hi, got {number_range}")
        if max_factor < 2 or not 0.0 < heldout_fraction < 1.0:
            raise ValueError("max_factor must be >= 2 and heldout_fraction in (0, 1)")
        self.level = level
        self.number_range = number_range
        self.max_factor = max_factor
        self.heldout_fraction = heldout_fraction
        self.templates = tuple(templates)

    def generate(
        self,
        n: int,
        split: Split = "train",
        seed: int = 0,
        *,
        level: Level | None = None,
        **options: Any,
    ) -> list[TaskSpec]:
        """``n`` distinct problems of ``split`` (distinct story and operands), the same list
        for the same arguments. Raises ValueError when the level has too few of them."""
        if options:
            raise TypeError(f"unknown options for {self.name}: {sorted(options)}")
        if split not in ("train", "heldout"):
            raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
        level = level or self.level
        if level not in LEVEL_RANGES:
            raise ValueError(f"unknown level {level!r}; choose one of {sorted(LEVEL_RANGES)}")
        lo, hi = self.number_range or LEVEL_RANGES[level]
        templates = [t for t in self.templates if level in t.levels]
        if not templates:
            raise ValueError(f"no template has level {level!r}")
        rng = random.Random(seed)
        seen: set[tuple[str, tuple[int, ...]]] = set()
        out: list[TaskSpec] = []
        budget = 10_000 + 200 * n
        while len(out) < n:
            budget -= 1
            if budget < 0:
                raise ValueError(
                    f"found only {len(out)} distinct {split} problems at level {level!r} "
                    f"with numbers {lo}..{hi}; ask for fewer or widen number_range"
                )
            template = rng.choice(templates)
            operands = sample_operands(template.ops, rng, lo, hi, self.max_factor)
            if operands is None or (template.id, operands) in seen:
                continue
            key = canonical_key(template.ops, operands)
            if split_of(key, self.heldout_fraction) != split:
                continue
            seen.add((template.id, operands))
            out.append(self._spec(template, operands, key, split, level, rng))
        return out

    def _spec(
        self,
        template: ProblemTemplate,
        operands: tuple[int, ...],
        key: str,
        split: Split,
        level: str,
        rng: random.Random,
    ) -> TaskSpec:
        name, friend = rng.sample(NAMES, 2)
        slots = dict(zip("abc", operands, strict=False))
        prompt = template.text.format(name=name, friend=friend, items=rng.choice(ITEMS), **slots)
        return TaskSpec(
            prompt=prompt,
            answer=str(solve(template.ops, operands)),
            environment=self.name,
            metadata={
                "template": template.id,
                "ops": list(template.ops),
                "operands": list(operands),
                "level": level,
                "key": key,
            },
            split=split,
        )
