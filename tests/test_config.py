from __future__ import annotations

import pytest

from tentalis.config import load_settings
from tentalis.errors import ConfigError


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    monkeypatch.delenv("TENTALIS_CONFIG", raising=False)
    return tmp_path


def test_defaults_and_derived_paths(isolated_home) -> None:
    s = load_settings()
    assert s.inference_backend == "local" and s.task_timeout_seconds == 120
    assert s.store_path == isolated_home / "experience.db"
    assert s.environments == ["math"]


def test_environment_overrides_and_toml_file(isolated_home, monkeypatch) -> None:
    (isolated_home / "config.toml").write_text('task_timeout_seconds = 12.5\nmanager_id = "m-7"\n')
    monkeypatch.setenv("MANAGER_ID", "from-env")
    s = load_settings()
    assert s.task_timeout_seconds == 12.5  # from the file
    assert s.manager_id == "from-env"  # env beats file
    assert load_settings(manager_id="cli").manager_id == "cli"  # explicit beats env


def test_invalid_value_names_the_variable_and_allowed_values(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_BACKEND", "tensorflow")
    with pytest.raises(ConfigError) as err:
        load_settings()
    msg = str(err.value)
    assert "INFERENCE_BACKEND='tensorflow'" in msg
    for allowed in ("local", "openai", "ollama", "vllm"):
        assert allowed in msg


def test_out_of_range_number_is_rejected(monkeypatch) -> None:
    monkeypatch.setenv("TASK_TIMEOUT_SECONDS", "-3")
    with pytest.raises(ConfigError, match="TASK_TIMEOUT_SECONDS"):
        load_settings()


def test_ollama_backend_derives_its_base_url(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_BACKEND", "ollama")
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box:11434/")
    assert load_settings().resolved_inference_base_url() == "http://gpu-box:11434/v1"


def test_toml_round_trip_leaves_out_secrets(monkeypatch) -> None:
    monkeypatch.setenv("INFERENCE_API_KEY", "sk-very-secret")
    data = load_settings().to_toml_dict()
    assert "inference_api_key" not in data and "sk-very-secret" not in str(data)
