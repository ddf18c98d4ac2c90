"""The ``math`` environment: seeded arithmetic word problems (:mod:`.tasks`), the strict
verifier (:mod:`.verifier`) and its arithmetic checks (:mod:`.arithmetic`), the lenient
bootstrapping reward (:mod:`.lenient`), and the judge-calibration tasks
(:mod:`.calibration`).

=========  =====================================================================
spec       scorer
=========  =====================================================================
default    ``WeightedScorer(verifier 0.8, format 0.2)``, named "math"
lenient    ``LenientMathScorer`` (for bootstrapping a weak model)
verifier   ``MathVerifier`` alone
format     ``FormatScorer`` alone
=========  =====================================================================
"""

from tentalis.envs.math.arithmetic import Claim, claim_score, find_claims
from tentalis.envs.math.lenient import LenientMathScorer
from tentalis.envs.math.tasks import (
    LEVEL_RANGES,
    TEMPLATES,
    ArithmeticWordProblems,
    ProblemTemplate,
    apply,
    canonical_key,
    solve,
)
from tentalis.envs.math.verifier import MathVerifier
from tentalis.envs.registry import register_environment
from tentalis.rewards.base import StepScorer
from tentalis.rewards.format import FormatScorer
from tentalis.rewards.registry import register_scorer
from tentalis.rewards.weighted import WeightedScorer


def default_scorer() -> StepScorer:
    """The math reward: the verifier (0.8) and the format (0.2)."""
    return WeightedScorer([(MathVerifier(), 0.8), (FormatScorer(), 0.2)], name="math")


def register() -> None:
    """Register the ``math`` environment and its scorers (see the table above)."""
    register_environment(ArithmeticWordProblems.name, ArithmeticWordProblems)
    for spec, factory in (("default", default_scorer), ("lenient", LenientMathScorer),
                          ("verifier", MathVerifier), ("format", FormatScorer)):
        register_scorer(ArithmeticWordProblems.name, spec, factory)


__all__ = [
    "LEVEL_RANGES",
    "TEMPLATES",
    "ArithmeticWordProblems",
    "Claim",
    "LenientMathScorer",
    "MathVerifier",
    "ProblemTemplate",
    "apply",
    "canonical_key",
    "claim_score",
    "default_scorer",
    "find_claims",
    "register",
    "solve",
]
