"""Which scorer scores which environment: ``scorer_for(environment, spec)``.

=============  ==========  ===========================================================
environment    spec        scorer
=============  ==========  ===========================================================
math           default     ``WeightedScorer(verifier 0.8, format 0.2)``, named "math"
math           lenient     ``LenientMathScorer`` (for bootstrapping a weak model)
math           verifier    ``MathVerifier`` alone
math           format      ``FormatScorer`` alone
any            judge       the LLM step judge JUDGE_* configures (``rewards.judge``)
any            combined    ``CombinedScorer`` with the environment's profile
any            combined:P  ``CombinedScorer`` with profile ``P`` (``rewards.profiles``)
=============  ==========  ===========================================================

More are added with :func:`register_scorer`; a spec for every environment (its own entry
wins) with :func:`register_generic_scorer`.
"""

from __future__ import annotations

from collections.abc import Callable

from tentalis.errors import ScoringError
from tentalis.rewards.base import StepScorer
from tentalis.rewards.format import FormatScorer
from tentalis.rewards.lenient import LenientMathScorer
from tentalis.rewards.verifiers import MathVerifier
from tentalis.rewards.weighted import WeightedScorer

ScorerFactory = Callable[[], StepScorer]
GenericFactory = Callable[[str, str], StepScorer]  # (environment, argument after ":")


def _math_default() -> StepScorer:
    return WeightedScorer([(MathVerifier(), 0.8), (FormatScorer(), 0.2)], name="math")


_REGISTRY: dict[str, dict[str, ScorerFactory]] = {
    "math": {
        "default": _math_default,
        "lenient": LenientMathScorer,
        "verifier": MathVerifier,
        "format": FormatScorer,
    },
}


_GENERIC: dict[str, GenericFactory] = {}


def register_generic_scorer(spec: str, factory: GenericFactory) -> None:
    """Make ``scorer_for(env, spec)`` and ``scorer_for(env, f"{spec}:{arg}")`` return
    ``factory(env, arg)`` for any environment without its own ``spec``."""
    _GENERIC[spec] = factory


def register_scorer(environment: str, spec: str, factory: ScorerFactory) -> None:
    """Make ``scorer_for(environment, spec)`` return ``factory()``."""
    _REGISTRY.setdefault(environment, {})[spec] = factory


def scorer_for(environment: str, spec: str = "default") -> StepScorer:
    """A new scorer for ``environment``; raises :class:`ScoringError` naming the choices."""
    if environment not in _REGISTRY:
        # Built-in environments register their own scorers when they are imported.
        import tentalis.agents.environments  # noqa: F401

    specs = _REGISTRY.get(environment)
    if spec not in (specs or {}) and spec.partition(":")[0] in _GENERIC:
        head, _, arg = spec.partition(":")
        return _GENERIC[head](environment, arg)
    if specs is None:
        raise ScoringError(f"no scorer for environment {environment!r}; known: {sorted(_REGISTRY)}")
    if spec not in specs:
        raise ScoringError(
            f"no scorer spec {spec!r} for environment {environment!r}; "
            f"known: {sorted([*specs, *_GENERIC])}"
        )
    return specs[spec]()
