"""answers_match: numbers compared as numbers, other answers after normalisation."""

from __future__ import annotations

import pytest

from tentalis.steps import answers_match


@pytest.mark.parametrize(
    ("answer", "truth", "match"),
    [
        ("7", "7", True),
        ("7.0", "7", True),
        ("7 apples", "7", True),
        ("$1,000", "1000", True),
        ("3 + 4 = 7", "7", True),
        ("0.75", "3/4", True),
        ("seven", "7", True),
        ("8", "7", False),
        (None, "7", False),
        ("Paris.", "paris", True),
        ("Lyon", "Paris", False),
        ("7.0000001", "7", True),  # within the relative tolerance of 1e-6
        ("7.001", "7", False),
    ],
)
def test_answers_match(answer: str | None, truth: str, match: bool) -> None:
    assert answers_match(answer, truth) is match
