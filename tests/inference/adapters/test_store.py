"""AdapterStore: versions, checksums, atomic writes, and names that cannot escape root."""

from __future__ import annotations

from pathlib import Path

import pytest

from tentalis.errors import AdapterError
from tentalis.inference import AdapterStore
from tentalis.inference.adapters import adapter_sha256


def fake_adapter(directory: Path, payload: bytes) -> Path:
    directory.mkdir(parents=True)
    (directory / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    (directory / "adapter_model.safetensors").write_bytes(payload)
    return directory


def test_versions_are_numbered_and_checksummed(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path / "adapters")
    assert store.versions("policy") == [] and store.latest("policy") is None
    v1 = store.save_version("policy", fake_adapter(tmp_path / "s1", b"one"))
    v2 = store.save_version("policy", fake_adapter(tmp_path / "s2", b"two"))
    assert (v1.version, v2.version) == (1, 2)
    assert v2.path == tmp_path / "adapters" / "policy" / "v2"
    assert (v2.path / "adapter_model.safetensors").read_bytes() == b"two"
    assert store.versions("policy") == [1, 2]
    assert store.latest("policy") == v2
    assert store.get("policy", 1) == v1
    assert v1.sha256 == adapter_sha256(tmp_path / "s1") != v2.sha256
    assert store.names() == ["policy"]
    assert not [p for p in (tmp_path / "adapters" / "policy").iterdir() if p.name.startswith(".")]


def test_a_real_peft_adapter_round_trips(tmp_path: Path, lora_dirs: dict[str, Path]) -> None:
    v = AdapterStore(tmp_path).save_version("A", lora_dirs["a1"])
    assert (v.path / "adapter_config.json").is_file()
    assert v.sha256 == adapter_sha256(lora_dirs["a1"])


@pytest.mark.parametrize(
    "name", ["", "../x", "/abs", "a/b", "..", ".hidden", "a b", "x" * 200, "naïve", "a\\b"]
)
def test_path_traversal_and_odd_names_are_refused(tmp_path: Path, name: str) -> None:
    store = AdapterStore(tmp_path / "root")
    src = fake_adapter(tmp_path / "src", b"x")
    with pytest.raises(AdapterError, match="invalid adapter name"):
        store.save_version(name, src)
    with pytest.raises(AdapterError):
        store.versions(name)
    assert not (tmp_path / "root").exists()


def test_missing_things_are_adapter_errors(tmp_path: Path) -> None:
    store = AdapterStore(tmp_path)
    with pytest.raises(AdapterError, match="no version 3"):
        store.get("policy", 3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterError, match=r"adapter_config\.json"):
        store.save_version("policy", tmp_path / "empty")
