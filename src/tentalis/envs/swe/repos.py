"""Small buggy repositories for the ``swe`` environment: one module with one bug, its fix,
and a ``unittest`` test module that fails on the bug and passes on the fix.

Each :class:`BugTemplate` draws its test cases (and the module's name) from a seeded
generator, so the same template gives many distinct tasks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MODULES = ("utils", "helpers", "core", "tools", "mathx", "textkit")


@dataclass(frozen=True)
class Repo:
    """One drawn repository: ``module`` (``<name>.py``) with ``buggy`` and ``fixed``
    sources, ``tests`` (``test_<name>.py``), and ``cases`` (what makes it distinct)."""

    template: str
    module: str
    buggy: str
    fixed: str
    tests: str
    cases: tuple[object, ...]
    issue: str


@dataclass(frozen=True)
class BugTemplate:
    id: str
    function: str
    buggy: str
    fixed: str
    issue: str



def _tests(module: str, function: str, cases: list[tuple[tuple[object, ...], object]]) -> str:
    lines = [
        "import unittest", "", f"from {module} import {function}", "", "",
        f"class Test{function.title().replace('_', '')}(unittest.TestCase):",
    ]  # fmt: skip
    for i, (args, want) in enumerate(cases):
        call = f"{function}({', '.join(map(repr, args))})"
        lines += [f"    def test_case_{i}(self):", f"        self.assertEqual({call}, {want!r})"]
        lines.append("")
    lines += ["", 'if __name__ == "__main__":', "    unittest.main()"]
    return "\n".join(lines) + "\n"


def _clamp_cases(rng: random.Random) -> list[tuple[tuple[object, ...], object]]:
    lo = rng.randint(0, 10)
    hi = lo + rng.randint(5, 20)
    xs = [lo - rng.randint(1, 9), rng.randint(lo, hi), hi + rng.randint(1, 9)]
    return [((x, lo, hi), max(lo, min(x, hi))) for x in xs]


def _factorial_cases(rng: random.Random) -> list[tuple[tuple[object, ...], object]]:
    ns = sorted(rng.sample(range(1, 9), 3))
    out = []
    for n in ns:
        f = 1
        for k in range(2, n + 1):
            f *= k
        out.append(((n,), f))
    return out


def _average_cases(rng: random.Random) -> list[tuple[tuple[object, ...], object]]:
    cases = []
    for _ in range(3):
        k = rng.randint(2, 5)
        xs = [rng.randint(1, 20) for _ in range(k - 1)]
        xs.append(rng.randint(1, 20))
        total = sum(xs)
        xs[-1] += (-total) % k  # make the mean an integer, so the expected value is exact
        cases.append(((xs,), sum(xs) // k))
    return cases


def _words_cases(rng: random.Random) -> list[tuple[tuple[object, ...], object]]:
    words = ("red", "fox", "sky", "tea", "owl", "map", "ink")
    cases = []
    for _ in range(3):
        picked = rng.sample(words, rng.randint(2, 5))
        text = "  ".join(picked) if rng.random() < 0.5 else " " + " ".join(picked) + " "
        cases.append(((text,), len(picked)))
    return cases


def _leap_cases(rng: random.Random) -> list[tuple[tuple[object, ...], object]]:
    century = rng.choice((1700, 1800, 1900, 2100))
    quad = rng.choice((1600, 2000, 2400))
    year = rng.randrange(1904, 2096, 4)
    return [((century,), False), ((quad,), True), ((year,), True), ((year + 1,), False)]


def _discount_cases(rng: random.Random) -> list[tuple[tuple[object, ...], object]]:
    pairs = [(rng.randint(1, 9) * 100, rng.choice((10, 20, 25, 50))) for _ in range(3)]
    return [((p, d), p - p * d // 100) for p, d in pairs]


# fmt: off
TEMPLATES: tuple[BugTemplate, ...] = (
    BugTemplate("clamp", "clamp",
        'def clamp(x, lo, hi):\n    """x within [lo, hi]."""\n    return min(lo, max(x, hi))\n',
        'def clamp(x, lo, hi):\n    """x within [lo, hi]."""\n    return max(lo, min(x, hi))\n',
        "clamp() returns values outside the range"),
    BugTemplate("factorial", "factorial",
        'def factorial(n):\n    """n! for n >= 1."""\n    result = 1\n    for k in range(1, n):'
        '\n        result *= k\n    return result\n',
        'def factorial(n):\n    """n! for n >= 1."""\n    result = 1\n    for k in range(1, n + 1):'
        '\n        result *= k\n    return result\n',
        "factorial() is too small"),
    BugTemplate("average", "average",
        'def average(xs):\n    """The mean of a non-empty list, as an integer when exact."""\n'
        '    return sum(xs) // (len(xs) + 1)\n',
        'def average(xs):\n    """The mean of a non-empty list, as an integer when exact."""\n'
        '    return sum(xs) // len(xs)\n',
        "average() gives the wrong mean"),
    BugTemplate("count_words", "count_words",
        'def count_words(text):\n    """How many words, separated by any whitespace."""\n'
        '    return len(text.split(" "))\n',
        'def count_words(text):\n    """How many words, separated by any whitespace."""\n'
        '    return len(text.split())\n',
        "count_words() miscounts text with extra spaces"),
    BugTemplate("is_leap", "is_leap",
        'def is_leap(year):\n    """Gregorian leap year."""\n    return year % 4 == 0\n',
        'def is_leap(year):\n    """Gregorian leap year."""\n'
        '    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)\n',
        "is_leap() is wrong for century years"),
    BugTemplate("discount", "discount",
        'def discount(price, percent):\n    """price reduced by percent (integer cents)."""\n'
        '    return price * percent // 100\n',
        'def discount(price, percent):\n    """price reduced by percent (integer cents)."""\n'
        '    return price - price * percent // 100\n',
        "discount() returns the discount instead of the reduced price"),
)
# fmt: on
CASES = {
    "clamp": _clamp_cases, "factorial": _factorial_cases, "average": _average_cases,
    "count_words": _words_cases, "is_leap": _leap_cases, "discount": _discount_cases,
}  # fmt: skip


def draw_repo(template: BugTemplate, rng: random.Random) -> Repo:
    """One repository from ``template`` with seeded test cases and module name."""
    module = rng.choice(MODULES)
    cases = CASES[template.id](rng)
    return Repo(
        template=template.id,
        module=module,
        buggy=template.buggy,
        fixed=template.fixed,
        tests=_tests(module, template.function, cases),
        cases=tuple(repr(c) for c in cases),
        issue=template.issue,
    )
