"""Rewards: the ``StepScorer`` protocol and the generic scorers that implement it.

Environment-specific verifiers and scorers live with their environment
(``tentalis.envs.<name>``) and are found through :func:`scorer_for`; rewards never imports
an environment. Importing this package registers nothing: see
:func:`tentalis.envs.load_environments`.
"""

from tentalis.rewards.base import StepScorer, StepScores, ground_truth
from tentalis.rewards.builtins import register_builtin_scorers
from tentalis.rewards.combined import CombinedScorer
from tentalis.rewards.exact_match import ExactMatchVerifier
from tentalis.rewards.format import FormatScorer
from tentalis.rewards.judge import JudgeConfig, JudgeScorer
from tentalis.rewards.judge_factory import judge_from_settings
from tentalis.rewards.judge_parsing import Judgement, parse_judgement
from tentalis.rewards.profiles import Profile, load_profile
from tentalis.rewards.registry import register_generic_scorer, register_scorer, scorer_for
from tentalis.rewards.weighted import WeightedScorer

__all__ = [
    "CombinedScorer",
    "ExactMatchVerifier",
    "FormatScorer",
    "JudgeConfig",
    "JudgeScorer",
    "Judgement",
    "Profile",
    "StepScorer",
    "StepScores",
    "WeightedScorer",
    "ground_truth",
    "judge_from_settings",
    "load_profile",
    "parse_judgement",
    "register_builtin_scorers",
    "register_generic_scorer",
    "register_scorer",
    "scorer_for",
]
