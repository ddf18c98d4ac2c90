"""``create_inference(settings)``: the InferenceClient that INFERENCE_BACKEND names."""

from __future__ import annotations

from tentalis.config import Settings
from tentalis.errors import ConfigError
from tentalis.inference.base import InferenceClient
from tentalis.models.store import ModelStore, Progress


def create_inference(settings: Settings, *, progress: Progress | None = None) -> InferenceClient:
    """Build the client: ``local`` loads LLM_MODEL in-process (fetching it on first use);
    ``openai``/``vllm`` talk to INFERENCE_BASE_URL; ``ollama`` to OLLAMA_HOST/v1."""
    backend = settings.inference.backend
    if backend == "local":
        from tentalis.inference.local import LocalInference

        model_dir = ModelStore(settings.tentalis_home, progress=progress).resolve(
            settings.inference.model
        )
        return LocalInference(
            model_dir,
            device=settings.inference.device,
            dtype=settings.inference.dtype,
            max_batch=settings.inference.max_batch,
            window_s=settings.inference.batch_window_ms / 1000,
            model_name=settings.inference.model,
        )

    from tentalis.inference.openai import OpenAIInference

    base_url = settings.inference.resolved_base_url()
    if not base_url:
        raise ConfigError(
            f"INFERENCE_BACKEND={backend} needs INFERENCE_BASE_URL "
            f"(e.g. http://localhost:8000/v1 for vLLM)"
        )
    key = settings.inference.api_key.get_secret_value() if settings.inference.api_key else None
    return OpenAIInference(
        base_url,
        key,
        settings.inference.model,
        max_concurrency=max(16, settings.inference.max_batch),
        token_ids=backend == "vllm",
    )
