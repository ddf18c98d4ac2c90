"""Rewards: the ``StepScorer`` protocol and the scorers that implement it."""

from tentalis.rewards.arithmetic import Claim, claim_score, find_claims
from tentalis.rewards.base import StepScorer, StepScores
from tentalis.rewards.format import FormatScorer
from tentalis.rewards.lenient import LenientMathScorer
from tentalis.rewards.registry import register_scorer, scorer_for
from tentalis.rewards.verifiers import ExactMatchVerifier, MathVerifier, answers_match
from tentalis.rewards.weighted import WeightedScorer

__all__ = [
    "Claim",
    "ExactMatchVerifier",
    "FormatScorer",
    "LenientMathScorer",
    "MathVerifier",
    "StepScorer",
    "StepScores",
    "WeightedScorer",
    "answers_match",
    "claim_score",
    "find_claims",
    "register_scorer",
    "scorer_for",
]
