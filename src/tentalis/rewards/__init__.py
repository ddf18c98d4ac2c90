"""Rewards: the ``StepScorer`` protocol and the scorers that implement it."""

from tentalis.rewards.arithmetic import Claim, claim_score, find_claims
from tentalis.rewards.base import StepScorer, StepScores
from tentalis.rewards.combined import CombinedScorer
from tentalis.rewards.format import FormatScorer
from tentalis.rewards.judge import JudgeConfig, JudgeScorer
from tentalis.rewards.judge_factory import judge_from_settings
from tentalis.rewards.judge_parsing import Judgement, parse_judgement
from tentalis.rewards.lenient import LenientMathScorer
from tentalis.rewards.profiles import Profile, load_profile
from tentalis.rewards.registry import register_generic_scorer, register_scorer, scorer_for
from tentalis.rewards.verifiers import ExactMatchVerifier, MathVerifier, answers_match
from tentalis.rewards.weighted import WeightedScorer

register_generic_scorer("judge", lambda env, arg: judge_from_settings())
register_generic_scorer("combined", lambda env, arg: CombinedScorer(env, arg or None))

__all__ = [
    "Claim",
    "CombinedScorer",
    "ExactMatchVerifier",
    "FormatScorer",
    "JudgeConfig",
    "JudgeScorer",
    "Judgement",
    "LenientMathScorer",
    "MathVerifier",
    "Profile",
    "StepScorer",
    "StepScores",
    "WeightedScorer",
    "answers_match",
    "claim_score",
    "find_claims",
    "judge_from_settings",
    "load_profile",
    "parse_judgement",
    "register_generic_scorer",
    "register_scorer",
    "scorer_for",
]
