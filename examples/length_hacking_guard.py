"""The reward-hacking guard on two synthetic training traces: a clean one and a planted
length hack (from rollout 150 on, completions grow and a length-loving scorer pays more).

    python examples/length_hacking_guard.py [--seed 0] [--rollouts 600]

Prints, for each trace, how many checks ran and the first WARNING / HARD_STOP with the
reason and numbers the guard computed. Thresholds: GUARD_* settings (defaults here).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterator

from tentalis.config import load_settings
from tentalis.rewards.guard import GuardConfig, GuardLevel, Observation, RewardHackingGuard


def clean(rng: random.Random, n: int) -> Iterator[Observation]:
    for _ in range(n):
        reward = rng.choices([0.0, 0.3, 0.6, 1.0], [0.45, 0.15, 0.1, 0.3])[0]
        yield Observation(max(1, round(rng.gauss(40, 8))), reward)


def length_hack(rng: random.Random, n: int, start: int = 150) -> Iterator[Observation]:
    for i in range(n):
        length = max(1, round(rng.gauss(40 + 0.5 * max(0, i - start), 8)))
        yield Observation(length, min(1.0, max(0.0, length / 120 + rng.gauss(0, 0.05))))


def watch(name: str, config: GuardConfig, trace: Iterator[Observation]) -> None:
    guard = RewardHackingGuard(config)
    first: dict[GuardLevel, tuple[int, str]] = {}
    for obs in trace:
        verdict = guard.observe(obs)
        if verdict is not None and verdict.level is not GuardLevel.OK:
            first.setdefault(verdict.level, (verdict.observations, verdict.reason))
    print(f"{name}: {guard.checks} checks over {guard.observations} rollouts")
    if not first:
        print("  quiet: no signal fired")
    for level, (at, reason) in first.items():
        print(f"  first {level.value.upper()} at rollout {at}: {reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rollouts", type=int, default=600)
    args = parser.parse_args()
    config = load_settings().guard
    watch("clean", config, clean(random.Random(args.seed), args.rollouts))
    watch("length hack from rollout 150", config,
          length_hack(random.Random(args.seed), args.rollouts))


if __name__ == "__main__":
    main()
