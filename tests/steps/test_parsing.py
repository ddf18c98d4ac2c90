"""parse_steps and extract_number on what small models really write."""

from __future__ import annotations

import pytest

from tentalis.steps import extract_number, extract_numbers, parse_steps

# (text, steps, final_answer, status, used_fallback)
CASES = [
    pytest.param(
        "<step>Tom has 3 apples and buys 4 more.</step>\n<step>3 + 4 = 7</step>\nAnswer: 7",
        ["Tom has 3 apples and buys 4 more.", "3 + 4 = 7"], "7", "ok", False,
        id="well-formed",
    ),
    pytest.param(
        "<Step n=1>  12 + 7\n = 19 </STEP>\n< step >19 - 4 = 15</ step >\nFinal answer: **15**.",
        ["12 + 7 = 19", "19 - 4 = 15"], "15", "ok", False,
        id="case-attributes-whitespace",
    ),
    pytest.param(
        "<step>5 * 3 = 15</step><step>15 + 2 = 17\nAnswer: 17",
        ["5 * 3 = 15", "15 + 2 = 17"], "17", "ok", False,
        id="unclosed-last-step",
    ),
    pytest.param(
        "Step 1: Sam has 10 pencils.\nStep 2: He gives away 4, so 10 - 4 = 6.\nAnswer: 6",
        ["Sam has 10 pencils.", "He gives away 4, so 10 - 4 = 6."], "6", "ok", True,
        id="step-n-fallback",
    ),
    pytest.param(
        "**Step 1:** 6 x 2 = 12\n  continues here\n**Step 2:** done\n\nThe answer is 12.",
        ["6 x 2 = 12 continues here", "done"], "12", "ok", True,
        id="markdown-step-headers-and-phrase",
    ),
    pytest.param(
        "1. There are 4 boxes.\n2) Each has 5, so 4 * 5 = 20.\n#### 20",
        ["There are 4 boxes.", "Each has 5, so 4 * 5 = 20."], "20", "ok", True,
        id="numbered-lines-hashes",
    ),
    pytest.param(
        "<step>8 + 9 = 17</step>\n<step>so they have 17</step>",
        ["8 + 9 = 17", "so they have 17"], None, "no_answer", False,
        id="no-answer",
    ),
    pytest.param(
        "We add them up and get $\\boxed{42}$.", [], "42", "no_steps", False,
        id="boxed-no-steps",
    ),
    pytest.param(
        "<step>1/2 + 1/4</step>\nAnswer: \\boxed{\\frac{3}{4}}", ["1/2 + 1/4"], "\\frac{3}{4}",
        "ok", False, id="nested-braces-in-boxed",
    ),
    pytest.param(
        "<step>24 / 6 = 4</step>\n<answer> 4 </answer>", ["24 / 6 = 4"], "4", "ok", False,
        id="answer-tag",
    ),
    pytest.param("", [], None, "empty", False, id="empty"),
    pytest.param("   \n\t <|im_end|>", [], None, "empty", False, id="whitespace-and-eos"),
    pytest.param("asdf qwer !!! ??", [], None, "no_steps", False, id="garbage"),
    pytest.param("<step></step><step>   </step>", [], None, "no_steps", False, id="empty-steps"),
    pytest.param(
        "<step>3 + 4 = 7</step>\nAnswer: 7\nQuestion: What is 2 + 2?\nAnswer: 4",
        ["3 + 4 = 7"], "7", "ok", False,
        id="runs-on-after-answering",
    ),
    pytest.param(
        "<step>3 + 4 = 7</step>\nAnswer:\n7", ["3 + 4 = 7"], "7", "ok", False,
        id="answer-on-next-line",
    ),
    pytest.param(
        "<step>The total is $12.50</step>\nAnswer: $12.50", ["The total is $12.50"], "$12.50",
        "ok", False, id="money",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("text", "steps", "answer", "status", "fallback"), CASES)
def test_parse_steps(text: str, steps: list[str], answer: str | None, status: str,
                     fallback: bool) -> None:  # fmt: skip
    parsed = parse_steps(text)
    assert parsed.steps == steps
    assert parsed.final_answer == answer
    assert parsed.status == status
    assert parsed.used_fallback is fallback


def test_parse_steps_none_never_raises() -> None:
    assert parse_steps(None).status == "empty"
    for junk in ["<step", "</step>", "<step>>", "\\boxed{", "Answer:", "<answer>", "####"]:
        parse_steps(junk)  # no exception


def test_answer_source_is_reported() -> None:
    assert parse_steps("Answer: 3").answer_source == "answer"
    assert parse_steps("\\boxed{3}").answer_source == "boxed"
    assert parse_steps("the answer is 3").answer_source == "phrase"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("12", 12.0),
        ("12 apples", 12.0),
        ("$12", 12.0),
        ("$1,234.50", 1234.5),
        ("-7", -7.0),
        ("−7", -7.0),
        ("-$3", -3.0),
        ("0.25", 0.25),
        (".5", 0.5),
        ("3/4", 0.75),
        ("1 1/2", 1.5),
        ("\\frac{3}{4}", 0.75),
        ("5 + 7 = 12", 12.0),
        ("10 - 4", 4.0),  # a binary minus is not a sign
        ("twelve", 12.0),
        ("forty", 40.0),
        ("no number here", None),
        ("", None),
        (None, None),
    ],
)
def test_extract_number(text: str | None, number: float | None) -> None:
    assert extract_number(text) == number


def test_extract_numbers_in_order() -> None:
    assert extract_numbers("3 boxes of 1,000 and 2.5 kg, 1/0 ignored") == [3.0, 1000.0, 2.5]


ADVERSARIAL = [
    "answer" + " " * 20_000 + "x",
    "Step 1" + " " * 20_000 + "x\n",
    "the answer is" + " " * 20_000,
    "\\boxed{" * 3_000,
    "Answer:\n" * 5_000,
    "<step>" * 5_000,
    "1" * 20_000,
]


@pytest.mark.timeout(10)
def test_parsing_is_linear_on_adversarial_text() -> None:
    for text in ADVERSARIAL:  # each took seconds to minutes with backtracking regexes
        parse_steps(text)
        extract_numbers(text)


def test_random_fragments_never_raise() -> None:
    import random

    fragments = ["<step>", "</step>", "<STEP n=2>", "Answer:", "Final answer:", "\\boxed{",
                 "}", "####", "Step 1:", "1.", "\n", " ", "12", "-3", "3/4", "$", "**", "<answer>",
                 "</answer>", "the answer is", "<|im_end|>", "x"]  # fmt: skip
    rng = random.Random(0)
    for _ in range(2_000):
        text = "".join(rng.choice(fragments) for _ in range(rng.randint(0, 30)))
        parsed = parse_steps(text)
        assert parsed.status in ("ok", "no_steps", "no_answer", "empty")
        assert all(step.strip() for step in parsed.steps)
