"""Building a judge from Settings, with one judge model per process.

``JUDGE_BACKEND`` / ``JUDGE_BASE_URL`` / ``JUDGE_MODEL`` pick the model exactly as
``INFERENCE_BACKEND`` / ``INFERENCE_BASE_URL`` / ``LLM_MODEL`` pick the workers' (local
SmolLM2 by default; any OpenAI-compatible endpoint by configuration). The client is built
on first use and shared by every judge of the process; a process that already serves the
same model (a demo, the calibration command) hands its client over with
:func:`use_judge_inference` instead of loading it twice.
"""

from __future__ import annotations

from tentalis.config import Settings, load_settings
from tentalis.inference.base import InferenceClient
from tentalis.rewards.judge import JudgeConfig, JudgeScorer

_clients: dict[tuple[str, str | None, str], InferenceClient] = {}
_override: InferenceClient | None = None


def judge_settings(settings: Settings) -> Settings:
    """``settings`` with the inference fields replaced by the judge's."""
    judge = settings.judge
    inference = settings.inference.model_copy(update={
        "backend": judge.backend, "base_url": judge.base_url,
        "model": judge.model or settings.inference.model,
    })
    return settings.model_copy(update={"inference": inference})


def use_judge_inference(client: InferenceClient | None) -> None:
    """Make every judge built from settings use ``client`` (None: back to JUDGE_*)."""
    global _override
    _override = client


def judge_inference(settings: Settings) -> InferenceClient:
    """The process's judge client for ``settings`` (built once, then shared)."""
    if _override is not None:
        return _override
    js = judge_settings(settings)
    key = (js.inference.backend, js.inference.base_url, js.inference.model)
    if key not in _clients:
        from tentalis.inference.factory import create_inference

        _clients[key] = create_inference(js)
    return _clients[key]


def judge_config(settings: Settings, **overrides: object) -> JudgeConfig:
    """The judge section of ``settings`` (JUDGE_*), ``overrides`` applied and validated."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return JudgeConfig.model_validate(settings.judge.model_dump() | given)


def judge_from_settings(
    settings: Settings | None = None, inference: InferenceClient | None = None
) -> JudgeScorer:
    """A JudgeScorer configured by JUDGE_* (settings loaded from the environment if None)."""
    settings = settings or load_settings()
    client = inference or judge_inference(settings)
    return JudgeScorer(client, judge_config(settings))
