"""Which scorer scores which environment: ``scorer_for(environment, spec)``.

=============  ==========  ===========================================================
environment    spec        scorer
=============  ==========  ===========================================================
math           default     ``WeightedScorer(verifier 0.8, format 0.2)``, named "math"
math           lenient     ``LenientMathScorer`` (for bootstrapping a weak model)
math           verifier    ``MathVerifier`` alone
math           format      ``FormatScorer`` alone
=============  ==========  ===========================================================

More are added with :func:`register_scorer`.
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


def register_scorer(environment: str, spec: str, factory: ScorerFactory) -> None:
    """Make ``scorer_for(environment, spec)`` return ``factory()``."""
    _REGISTRY.setdefault(environment, {})[spec] = factory


def scorer_for(environment: str, spec: str = "default") -> StepScorer:
    """A new scorer for ``environment``; raises :class:`ScoringError` naming the choices."""
    specs = _REGISTRY.get(environment)
    if specs is None:
        raise ScoringError(f"no scorer for environment {environment!r}; known: {sorted(_REGISTRY)}")
    if spec not in specs:
        raise ScoringError(
            f"no scorer spec {spec!r} for environment {environment!r}; known: {sorted(specs)}"
        )
    return specs[spec]()
