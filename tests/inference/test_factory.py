"""create_inference: the backend named in the settings, with readable config errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tentalis.config import Settings
from tentalis.errors import ConfigError
from tentalis.inference import create_inference
from tentalis.inference.local import LocalInference
from tentalis.inference.openai import OpenAIInference


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TENTALIS_CONFIG", str(tmp_path / "absent.toml"))
    for var in (
        "INFERENCE_BACKEND",
        "INFERENCE_BASE_URL",
        "INFERENCE_API_KEY",
        "LLM_MODEL",
        "OLLAMA_HOST",
    ):
        monkeypatch.delenv(var, raising=False)


async def test_local_backend_loads_a_directory(tmp_path: Path, tiny_model_dir: Path) -> None:
    s = Settings(
        tentalis_home=tmp_path,
        llm_model=str(tiny_model_dir),
        inference_device="cpu",
        inference_max_batch=3,
    )
    llm = create_inference(s)
    assert isinstance(llm, LocalInference)
    assert llm._batcher.max_batch == 3
    await llm.close()


def test_openai_backend_needs_a_base_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="INFERENCE_BASE_URL"):
        create_inference(Settings(tentalis_home=tmp_path, inference_backend="openai"))


@pytest.mark.parametrize("backend", ["openai", "vllm"])
async def test_remote_backends(tmp_path: Path, backend: str) -> None:
    s = Settings(
        tentalis_home=tmp_path,
        inference_backend=backend,
        inference_base_url="http://gpu:8000/v1",
        inference_api_key="k",
        llm_model="Qwen/Qwen2.5-7B-Instruct",
    )
    llm = create_inference(s)
    assert isinstance(llm, OpenAIInference)
    assert llm.base_url == "http://gpu:8000/v1" and llm.model_name == "Qwen/Qwen2.5-7B-Instruct"
    assert llm._token_ids == (backend == "vllm")
    await llm.close()


async def test_ollama_uses_ollama_host(tmp_path: Path) -> None:
    s = Settings(
        tentalis_home=tmp_path,
        inference_backend="ollama",
        ollama_host="http://box:11434/",
        llm_model="smollm2:135m",
    )
    llm = create_inference(s)
    assert isinstance(llm, OpenAIInference) and llm.base_url == "http://box:11434/v1"
    await llm.close()
