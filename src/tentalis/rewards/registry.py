"""Which scorer scores which environment: ``scorer_for(environment, spec)``.

The registry starts empty. An environment registers its own scorers (``verifier``,
``default`` …) when it is registered (``tentalis.envs.load_environments()``), and
:func:`~tentalis.rewards.builtins.register_builtin_scorers` adds the specs that work for any
environment:

=============  ===========================================================
spec           scorer
=============  ===========================================================
judge          the LLM step judge JUDGE_* configures (``rewards.judge``)
combined       ``CombinedScorer`` with the environment's profile
combined:P     ``CombinedScorer`` with profile ``P`` (``rewards.profiles``)
=============  ===========================================================

More are added with :func:`register_scorer`; a spec for every environment (its own entry
wins) with :func:`register_generic_scorer`. Rewards never imports an environment: this
registry is how it finds one's scorers.
"""

from __future__ import annotations

from collections.abc import Callable

from tentalis.errors import ScoringError
from tentalis.rewards.base import StepScorer

ScorerFactory = Callable[[], StepScorer]
GenericFactory = Callable[[str, str], StepScorer]  # (environment, argument after ":")

_REGISTRY: dict[str, dict[str, ScorerFactory]] = {}
_GENERIC: dict[str, GenericFactory] = {}


def register_generic_scorer(spec: str, factory: GenericFactory) -> None:
    """Make ``scorer_for(env, spec)`` and ``scorer_for(env, f"{spec}:{arg}")`` return
    ``factory(env, arg)`` for any environment without its own ``spec``."""
    _GENERIC[spec] = factory


def register_scorer(environment: str, spec: str, factory: ScorerFactory) -> None:
    """Make ``scorer_for(environment, spec)`` return ``factory()``."""
    _REGISTRY.setdefault(environment, {})[spec] = factory


def scored_environments() -> list[str]:
    """The environments with at least one registered scorer."""
    return sorted(_REGISTRY)


def scorer_for(environment: str, spec: str = "default") -> StepScorer:
    """A new scorer for ``environment``; raises :class:`ScoringError` naming the choices."""
    specs = _REGISTRY.get(environment)
    if spec not in (specs or {}) and spec.partition(":")[0] in _GENERIC:
        head, _, arg = spec.partition(":")
        return _GENERIC[head](environment, arg)
    if specs is None:
        hint = "" if _REGISTRY else " (none are registered: call tentalis.envs.load_environments())"
        raise ScoringError(
            f"no scorer for environment {environment!r}; known: {sorted(_REGISTRY)}{hint}"
        )
    if spec not in specs:
        raise ScoringError(
            f"no scorer spec {spec!r} for environment {environment!r}; "
            f"known: {sorted([*specs, *_GENERIC])}"
        )
    return specs[spec]()
