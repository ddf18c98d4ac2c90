"""``CombinedScorer``: an environment-aware weighted combination of scorers.

The weights come from a scoring profile (:mod:`tentalis.rewards.profiles`, TOML data).
Which profile: the task's ``metadata["profile"]`` (a profile *name*; paths are not taken
from tasks), else the one the scorer was built with, else the profile named after the
environment, else ``default``.

Components are named in the profile and built once per scorer:

* any spec registered for the environment (``scorer_for(env, name)``) — ``verifier`` is
  the environment's ground-truth verifier, ``default``/``lenient``/… likewise;
* ``format``: the environment's ``format`` scorer if it has one, else :class:`FormatScorer`;
* ``judge``: the environment's ``judge`` if registered, else the LLM judge JUDGE_* configures.

**Missing components.** A component that cannot be built (no such scorer for the
environment) or cannot score this task (it raises — e.g. a verifier on a task without
ground truth raises :class:`ScoringError`) is dropped for this result, and the weights of
the others are renormalised to sum to 1. ``details["dropped"]`` says what was dropped and
why. When nothing is left the scorer raises :class:`ScoringError` (recorded by the service).

With the remaining weights ``ŵ_i`` (summing to 1), exactly as :class:`WeightedScorer`::

    outcome = Σ_i ŵ_i · outcome_i
    step[j] = Σ_{i ∈ P} ŵ_i · step_i[j] / Σ_{i ∈ P} ŵ_i

where ``P`` holds the components that gave one score per step (others abstain on steps).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tentalis.errors import ScoringError, TentalisError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScorer, StepScores
from tentalis.rewards.format import FormatScorer
from tentalis.rewards.profiles import Profile, has_profile, load_profile
from tentalis.rewards.registry import scorer_for

RESERVED = ("combined",)  # a profile may not nest a combined scorer in itself


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def build_component(name: str, environment: str) -> StepScorer:
    """The scorer a profile means by ``name`` in ``environment`` (see the module docstring)."""
    if name.split(":")[0] in RESERVED:
        raise ScoringError(f"a profile cannot use {name!r} as a component")
    try:
        return scorer_for(environment, name)
    except ScoringError:
        if name == "format":
            return FormatScorer()
        raise


def combine(
    parts: Mapping[str, StepScores], weights: Mapping[str, float], n_steps: int
) -> tuple[list[float], float, dict[str, float], list[str]]:
    """(step scores, outcome, normalised weights, step voters) of ``parts``; see above."""
    total = sum(weights[n] for n in parts)
    norm = {n: weights[n] / total for n in parts}
    outcome = sum(norm[n] * p.outcome_score for n, p in parts.items())
    voters = [n for n, p in parts.items()
              if n_steps and len(p.step_scores) == n_steps and norm[n] > 0]
    steps: list[float] = []
    if voters:
        z = sum(norm[n] for n in voters)
        steps = [_clip(sum(norm[n] * parts[n].step_scores[j] for n in voters) / z)
                 for j in range(n_steps)]
    return steps, _clip(outcome), norm, sorted(voters)


class CombinedScorer:
    """Scores with the components of a profile; see the module docstring."""

    def __init__(
        self,
        environment: str,
        profile: str | Path | Profile | None = None,
        *,
        components: Mapping[str, StepScorer] | None = None,
        home: Path | None = None,
    ) -> None:
        self.environment = environment
        self.home = home
        if profile is None:
            profile = environment if has_profile(environment, home) else "default"
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile, home)
        self.name = f"combined:{self.profile.name}"
        self._profiles: dict[str, Profile] = {self.profile.name: self.profile}
        self._components: dict[str, StepScorer | TentalisError] = dict(components or {})

    def profile_for(self, task: TaskEvent) -> Profile:
        """The task's profile (``metadata["profile"]``, by name) or this scorer's."""
        ref = task.metadata.get("profile")
        if ref is None:
            return self.profile
        name = str(ref)
        if "/" in name or name.endswith(".toml"):
            raise ScoringError(f"task profile must be a name, not a path: {name!r}")
        if name not in self._profiles:
            self._profiles[name] = load_profile(name, self.home)
        return self._profiles[name]

    def _component(self, name: str) -> StepScorer | TentalisError:
        if name not in self._components:
            try:
                self._components[name] = build_component(name, self.environment)
            except TentalisError as exc:  # remembered: not rebuilt for every result
                self._components[name] = exc
        return self._components[name]

    async def _score_one(self, scorer: StepScorer, task: TaskEvent, result: ResultEvent) -> Any:
        try:
            return await scorer.score(task, result)
        except Exception as exc:  # a component's failure drops it; it never kills the rest
            return f"{type(exc).__name__}: {exc}"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        profile = self.profile_for(task)
        active = {n: w for n, w in profile.weights.items() if w > 0}
        dropped: dict[str, str] = {}
        scorers: dict[str, StepScorer] = {}
        for n in active:
            comp = self._component(n)
            if isinstance(comp, TentalisError):
                dropped[n] = str(comp)
            else:
                scorers[n] = comp
        outs = await asyncio.gather(*(self._score_one(s, task, result) for s in scorers.values()))
        parts: dict[str, StepScores] = {}
        for n, out in zip(scorers, outs, strict=True):
            if isinstance(out, StepScores):
                parts[n] = out
            else:
                dropped[n] = out
        if not parts:
            raise ScoringError(f"profile {profile.name!r}: no component could score: {dropped}")
        steps, outcome, norm, voters = combine(parts, active, len(result.steps))
        return StepScores(
            step_scores=steps,
            outcome_score=outcome,
            details={
                "profile": profile.name,
                "components": {n: p.outcome_score for n, p in parts.items()},
                "weights": norm,
                "dropped": dropped,
                "step_voters": voters,
                "component_steps": {n: p.step_scores for n, p in parts.items()},
                "component_details": {n: p.details for n, p in parts.items()},
            },
        )
