"""Settings → gateway configs: where the proxy forwards when INTERCEPT_BACKEND_URL is unset
or set."""

from __future__ import annotations

import pytest

from tentalis.config import load_settings
from tentalis.errors import ConfigError
from tentalis.services.gateway import proxy_config


def test_unset_backend_is_the_local_model_server(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    config = proxy_config(load_settings(model_server_port=8411))
    assert config.backend_url == "http://127.0.0.1:8411/v1"
    assert config.root == "http://127.0.0.1:8411"


def test_configured_backend_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    monkeypatch.setenv("INTERCEPT_BACKEND_URL", "http://localhost:11434/v1")
    assert proxy_config(load_settings()).root == "http://localhost:11434"


def test_no_backend_and_no_model_server_is_a_config_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="INTERCEPT_BACKEND_URL is unset"):
        proxy_config(load_settings(model_server_enabled=False))
