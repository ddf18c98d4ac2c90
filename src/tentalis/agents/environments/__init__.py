"""Environments: where tasks come from, how workers are told to answer, how answers are scored."""

from tentalis.agents.environments.base import (
    SPLITS,
    STEP_SYSTEM_PROMPT,
    Environment,
    Split,
    TaskSpec,
)
from tentalis.agents.environments.math import (
    LEVEL_RANGES,
    TEMPLATES,
    ArithmeticWordProblems,
    ProblemTemplate,
    canonical_key,
    solve,
    split_of,
)
from tentalis.agents.environments.registry import (
    environment_names,
    get_environment,
    register_environment,
)

__all__ = [
    "LEVEL_RANGES",
    "SPLITS",
    "STEP_SYSTEM_PROMPT",
    "TEMPLATES",
    "ArithmeticWordProblems",
    "Environment",
    "ProblemTemplate",
    "Split",
    "TaskSpec",
    "canonical_key",
    "environment_names",
    "get_environment",
    "register_environment",
    "solve",
    "split_of",
]
