"""Environments: where tasks come from, how workers are told to answer, how answers are
scored. One package per environment (``math``, ``terminal``, ``swe``, ``gui``) owns its
task generator, its verifier and its per-step scorers.

**Registration is explicit.** Importing this package registers nothing.
:func:`load_environments` registers the scorers every environment can use (``judge``,
``combined``), the built-in environments (each package's ``register()``), then calls every
entry point of the group ``tentalis.environments``. The services, the CLI and the demo call
it before they look an environment up; it is idempotent.

**Adding an environment from your own package.** Write an :class:`Environment` subclass
(or :class:`SuiteEnvironment`), a scorer (any object with ``name`` and
``async score(task, result) -> StepScores``), and a function that registers both::

    from tentalis.envs import register_environment
    from tentalis.rewards import register_scorer

    def register() -> None:
        register_environment("myenv", MyEnvironment)
        register_scorer("myenv", "default", MyScorer)

and declare it in your ``pyproject.toml``::

    [project.entry-points."tentalis.environments"]
    myenv = "mypackage.env:register"

Once the package is installed, workers (``WORKER_ENVIRONMENTS=myenv``) answer its tasks,
the scorer service scores them with its ``default`` scorer, and ``tentalis status`` lists
it beside each worker. An entry point that fails to load stops :func:`load_environments`
with a :class:`~tentalis.errors.ConfigError` naming it.
"""

from tentalis.envs.answering import build_messages, generate_results
from tentalis.envs.base import (
    HELDOUT_FRACTION,
    SPLITS,
    STEP_SYSTEM_PROMPT,
    Builder,
    Drawn,
    Environment,
    Split,
    SuiteEnvironment,
    TaskSpec,
    seeded_suite,
    split_of,
)
from tentalis.envs.registry import (
    ENTRY_POINT_GROUP,
    environment_names,
    get_environment,
    load_environments,
    register_environment,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "HELDOUT_FRACTION",
    "SPLITS",
    "STEP_SYSTEM_PROMPT",
    "Builder",
    "Drawn",
    "Environment",
    "Split",
    "SuiteEnvironment",
    "TaskSpec",
    "build_messages",
    "environment_names",
    "generate_results",
    "get_environment",
    "load_environments",
    "register_environment",
    "seeded_suite",
    "split_of",
]
