"""ModelStore: names → directories, the failed-fetch message, manifest verification."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tentalis.errors import ModelStoreError
from tentalis.models import SMOLLM2_ALIAS, ModelStore
from tentalis.models.smollm2 import MANIFEST, write_manifest


def test_local_directory_resolves_to_itself(tmp_path: Path, tiny_model_dir: Path) -> None:
    store = ModelStore(tmp_path)
    assert store.resolve(str(tiny_model_dir)) == tiny_model_dir.resolve()
    assert store.cached_path(str(tiny_model_dir)) == tiny_model_dir.resolve()


@pytest.mark.parametrize("name", ["", "not a model!", "../nowhere", "smollm2", "/no/such/dir"])
def test_bad_names_say_what_is_accepted(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelStoreError, match="LLM_MODEL"):
        ModelStore(tmp_path).resolve(name)


def test_directory_without_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelStoreError, match=r"config\.json"):
        ModelStore(tmp_path).resolve(str(tmp_path / "empty"))


def test_hub_id_offline_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelStoreError, match="local directory"):
        ModelStore(tmp_path).resolve("some-org/some-model-that-is-not-cached")


def test_failed_fetch_reports_pip_error_and_hint(tmp_path: Path) -> None:
    seen: list[str] = []
    store = ModelStore(tmp_path, package="tentalis-test-no-such-package-7f3a")
    with pytest.raises(ModelStoreError) as err:
        store.resolve(SMOLLM2_ALIAS, progress=seen.append)
    msg = str(err.value)
    assert "tentalis-test-no-such-package-7f3a" in msg
    assert "pip exit code" in msg
    assert "LLM_MODEL=" in msg  # how to use a local directory instead
    assert seen and "downloading" in seen[0]
    assert not store.path_for(SMOLLM2_ALIAS).exists()  # nothing half-written
    assert [p.name for p in store.root.iterdir()] == []  # temp dir cleaned up


@pytest.fixture
def cached_alias(tmp_path: Path, tiny_model_dir: Path) -> ModelStore:
    """A store whose SmolLM2 alias is 'cached' with the tiny model (no download)."""
    store = ModelStore(tmp_path, package="tentalis-test-must-not-be-fetched")
    dest = store.path_for(SMOLLM2_ALIAS)
    shutil.copytree(tiny_model_dir, dest)
    write_manifest(dest, {"package": "test", "wheel": "none", "version": "0"})
    return store


def test_cached_alias_is_used_without_fetching(cached_alias: ModelStore) -> None:
    path = cached_alias.resolve(SMOLLM2_ALIAS)
    assert path == cached_alias.path_for(SMOLLM2_ALIAS)
    assert cached_alias.cached_path(SMOLLM2_ALIAS) == path
    manifest = json.loads((path / MANIFEST).read_text())
    assert set(manifest["files"]) == {"model.safetensors"}
    assert {"created_at", "transformers_version", "source"} <= set(manifest)


def test_verify_detects_a_corrupted_weight_file(cached_alias: ModelStore) -> None:
    assert cached_alias.verify(SMOLLM2_ALIAS)["name"] == SMOLLM2_ALIAS
    weights = cached_alias.path_for(SMOLLM2_ALIAS) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelStoreError, match="sha256 mismatch"):
        cached_alias.verify(SMOLLM2_ALIAS)


def test_verify_of_unfetched_alias_fails(tmp_path: Path) -> None:
    with pytest.raises(ModelStoreError, match="not fetched"):
        ModelStore(tmp_path).verify(SMOLLM2_ALIAS)
    assert ModelStore(tmp_path).cached_path(SMOLLM2_ALIAS) is None
