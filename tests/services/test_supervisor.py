"""What ``tentalis serve`` hands its children (no process is started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tentalis.config import load_settings
from tentalis.gateway.security.keys import KeyRing, add_key
from tentalis.services.gateway import security_config
from tentalis.services.supervisor import Supervisor


def _children(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, dict]:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    for name in ("GATEWAY_API_KEYS", "INTERCEPT_BACKEND_URL", "INTERCEPT_BACKEND_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    kids = Supervisor(load_settings())._children("nats://127.0.0.1:4222")
    return {k.name: k.env for k in kids}


def test_with_keys_the_proxy_gets_a_key_the_model_server_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _children(tmp_path, monkeypatch, GATEWAY_API_KEYS="client-key")
    key = env["proxy"]["INTERCEPT_BACKEND_API_KEY"]
    assert key and key != "client-key"
    model_keys = env["model-server"]["GATEWAY_API_KEYS"].split(",")
    assert model_keys == ["client-key", key]
    # the model server's key ring, built from its own environment, accepts the proxy's key
    ring = KeyRing.load(None, env["model-server"]["GATEWAY_API_KEYS"])
    assert ring.match(key) is not None and ring.match("client-key") is not None
    # nothing else is handed the key
    assert all("INTERCEPT_BACKEND_API_KEY" not in e for n, e in env.items() if n != "proxy")
    assert env["bridge"].get("GATEWAY_API_KEYS") == "client-key"


def test_keys_only_in_the_key_file_count_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    add_key(tmp_path / "gateway_keys", label="ops")
    assert security_config(load_settings()).key_hashes
    env = _children(tmp_path, monkeypatch)
    assert env["proxy"]["INTERCEPT_BACKEND_API_KEY"] == env["model-server"]["GATEWAY_API_KEYS"]


@pytest.mark.parametrize("setting", [
    {},  # no keys: the model server asks nobody for one
    {"GATEWAY_API_KEYS": "k", "INTERCEPT_BACKEND_API_KEY": "mine"},  # the user's own
    {"GATEWAY_API_KEYS": "k", "INTERCEPT_BACKEND_URL": "http://127.0.0.1:9/v1"},  # elsewhere
])
def test_otherwise_nothing_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: dict[str, str]
) -> None:
    env = _children(tmp_path, monkeypatch, **setting)
    assert env["proxy"].get("INTERCEPT_BACKEND_API_KEY") == setting.get(
        "INTERCEPT_BACKEND_API_KEY")
    assert env["model-server"].get("GATEWAY_API_KEYS") == setting.get("GATEWAY_API_KEYS")
