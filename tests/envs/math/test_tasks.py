"""ArithmeticWordProblems: seeded, correct, exact, and a held-out split that never leaks."""

from __future__ import annotations

import operator
import re
from itertools import pairwise

import pytest

from tentalis.envs import Environment, TaskSpec, get_environment, split_of
from tentalis.envs.math import TEMPLATES, ArithmeticWordProblems, canonical_key
from tentalis.events import TaskEvent
from tentalis.rewards import StepScorer

LEVELS = ("addition", "one_step", "two_step")
PY_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


@pytest.fixture(scope="module")
def env() -> ArithmeticWordProblems:
    return ArithmeticWordProblems()


def recompute(spec: TaskSpec) -> float:
    ops, operands = spec.metadata["ops"], spec.metadata["operands"]
    value: float = operands[0]
    for op, x in zip(ops, operands[1:], strict=True):
        value = PY_OPS[op](value, x)
    return value


@pytest.mark.parametrize("level", LEVELS)
def test_same_seed_same_problems(env: ArithmeticWordProblems, level: str) -> None:
    a = env.generate(50, "train", seed=7, level=level)
    assert a == env.generate(50, "train", seed=7, level=level)
    assert a != env.generate(50, "train", seed=8, level=level)


@pytest.mark.parametrize("level", LEVELS)
def test_train_and_heldout_never_intersect(env: ArithmeticWordProblems, level: str) -> None:
    train_keys: set[str] = set()
    held_keys: set[str] = set()
    for seed in range(4):
        train = env.generate(1000, "train", seed=seed, level=level)
        held = env.generate(150, "heldout", seed=seed, level=level)
        assert all(s.split == "train" for s in train)
        assert all(s.split == "heldout" for s in held)
        train_keys |= {s.metadata["key"] for s in train}
        held_keys |= {s.metadata["key"] for s in held}
        train_prompts = {s.prompt for s in train}
        assert not train_prompts & {s.prompt for s in held}
    assert train_keys and held_keys
    assert not train_keys & held_keys


def test_split_is_fixed_across_levels_and_commutative_orders() -> None:
    assert canonical_key("+", (3, 5)) == canonical_key("+", (5, 3))
    assert canonical_key("-", (5, 3)) != canonical_key("-", (3, 5))
    keys = [canonical_key("+", (a, b)) for a in range(2, 31) for b in range(2, 31)]
    held = sum(split_of(k) == "heldout" for k in set(keys))
    assert 0.1 < held / len(set(keys)) < 0.3  # about 20 %


def test_heldout_split_is_stable_whatever_the_environment_settings() -> None:
    wide = ArithmeticWordProblems(number_range=(2, 30))
    held = {s.metadata["key"] for s in wide.generate(100, "heldout", seed=3, level="addition")}
    for seed in range(3):
        train = ArithmeticWordProblems().generate(500, "train", seed=seed, level="one_step")
        assert not held & {s.metadata["key"] for s in train}


@pytest.mark.parametrize("level", LEVELS)
def test_answers_are_correct_positive_integers(env: ArithmeticWordProblems, level: str) -> None:
    for spec in env.generate(500, "train", seed=1, level=level):
        assert float(spec.answer) == recompute(spec)
        assert int(spec.answer) >= 1
        for number in spec.metadata["operands"]:
            assert re.search(rf"\b{number}\b", spec.prompt), (number, spec.prompt)


@pytest.mark.parametrize("level", ["one_step", "two_step"])
def test_every_division_is_exact(env: ArithmeticWordProblems, level: str) -> None:
    divisions = 0
    for spec in env.generate(800, "heldout", seed=2, level=level):
        ops, operands = spec.metadata["ops"], spec.metadata["operands"]
        value = operands[0]
        for op, x in zip(ops, operands[1:], strict=True):
            if op == "/":
                divisions += 1
                assert value % x == 0, spec.prompt
                value //= x
            else:
                value = int(PY_OPS[op](value, x))
    assert divisions > 50


def test_levels_use_their_operations(env: ArithmeticWordProblems) -> None:
    addition = env.generate(200, seed=0, level="addition")
    assert {tuple(s.metadata["ops"]) for s in addition} == {("+",)}
    assert all(2 <= x <= 30 for s in addition for x in s.metadata["operands"])
    one = env.generate(400, seed=0, level="one_step")
    assert {tuple(s.metadata["ops"]) for s in one} == {("+",), ("-",), ("*",), ("/",)}
    two = env.generate(400, seed=0, level="two_step")
    assert all(len(s.metadata["ops"]) == 2 for s in two)
    assert len({s.metadata["template"] for s in two}) == sum(
        "two_step" in t.levels for t in TEMPLATES
    )


def test_problems_are_distinct(env: ArithmeticWordProblems) -> None:
    specs = env.generate(2000, "train", seed=5, level="addition")
    ids = {(s.metadata["template"], tuple(s.metadata["operands"])) for s in specs}
    assert len(ids) == len(specs)


def test_asking_for_too_many_fails_clearly() -> None:
    tiny = ArithmeticWordProblems(number_range=(2, 3))
    with pytest.raises(ValueError, match="found only"):
        tiny.generate(100, "heldout", level="addition")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="level"):
        ArithmeticWordProblems(level="calculus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="split"):
        ArithmeticWordProblems().generate(1, "test")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ArithmeticWordProblems().generate(1, difficulty="hard")


def test_registry_and_task_events() -> None:
    env = get_environment("math")
    assert isinstance(env, Environment) and env.name == "math"
    assert get_environment("math") is env
    assert get_environment("math:addition").level == "addition"  # type: ignore[attr-defined]
    assert "<step>" in env.system_prompt and "Answer:" in env.system_prompt
    assert isinstance(env.scorer(), StepScorer)
    with pytest.raises(KeyError, match="known"):
        get_environment("chess")

    spec = env.generate(1, "heldout", seed=0)[0]
    event = spec.to_task_event(temperature=0.0)
    assert isinstance(event, TaskEvent)
    assert (event.prompt, event.answer, event.split, event.environment) == (
        spec.prompt, spec.answer, "heldout", "math",
    )  # fmt: skip
    assert event.metadata == spec.metadata and event.temperature == 0.0


def test_ordered_output_is_reproducible_across_calls(env: ArithmeticWordProblems) -> None:
    # a longer request starts with the shorter one (same seed → same stream)
    short = env.generate(20, "train", seed=11)
    long = env.generate(40, "train", seed=11)
    assert long[:20] == short
    assert all(a != b for a, b in pairwise(long))
