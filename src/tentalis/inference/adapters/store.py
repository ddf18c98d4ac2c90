"""``AdapterStore``: versioned LoRA adapters on disk, ``<root>/<name>/v<version>/``.

A version is written once, atomically (copy into a temp dir, fsync, rename), and never
changed; its sha256 (over the ``*.safetensors`` files, in name order) travels in the
``ModelUpdateEvent`` so a worker can check what it loads. Names are validated so that no
name can escape ``root``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tentalis.durable import fsync_dir
from tentalis.errors import AdapterError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_VERSION_DIR = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class AdapterVersion:
    name: str
    version: int
    path: Path
    sha256: str


def validate_adapter_name(name: str) -> str:
    """Return ``name`` if it is a safe adapter name, else raise :class:`AdapterError`."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise AdapterError(
            f"invalid adapter name {name!r}: 1-128 characters from letters, digits, "
            f"'_', '-', '.', starting with a letter or digit, no '..'"
        )
    return name


def adapter_sha256(directory: Path) -> str:
    """sha256 over the adapter's safetensors files (names and bytes, in name order)."""
    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise AdapterError(f"{directory} holds no *.safetensors adapter weights")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()




class AdapterStore:
    """Adapter versions under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def _dir(self, name: str) -> Path:
        return self.root / validate_adapter_name(name)

    def versions(self, name: str) -> list[int]:
        """Stored versions of ``name``, ascending (empty if none)."""
        d = self._dir(name)
        if not d.is_dir():
            return []
        found = (_VERSION_DIR.match(p.name) for p in d.iterdir() if p.is_dir())
        return sorted(int(m.group(1)) for m in found if m)

    def get(self, name: str, version: int) -> AdapterVersion:
        path = self._dir(name) / f"v{int(version)}"
        if not path.is_dir():
            have = self.versions(name)
            raise AdapterError(f"adapter {name!r} has no version {version} (have {have})")
        return AdapterVersion(name, int(version), path, adapter_sha256(path))

    def latest(self, name: str) -> AdapterVersion | None:
        versions = self.versions(name)
        return self.get(name, versions[-1]) if versions else None

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def save_version(self, name: str, src_dir: str | Path) -> AdapterVersion:
        """Copy a peft adapter directory in as the next version of ``name``."""
        src = Path(src_dir)
        if not (src / "adapter_config.json").is_file():
            raise AdapterError(f"{src} is not a peft adapter directory (no adapter_config.json)")
        sha = adapter_sha256(src)
        parent = self._dir(name)
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=parent))
        try:
            for f in sorted(src.iterdir()):
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
                    with open(tmp / f.name, "rb") as fh:
                        os.fsync(fh.fileno())
            os.chmod(tmp, 0o755)  # mkdtemp makes it private
            fsync_dir(tmp)
            while True:  # another writer may take the same number: retry with the next
                version = (self.versions(name) or [0])[-1] + 1
                target = parent / f"v{version}"
                try:
                    os.rename(tmp, target)  # fails if target exists (non-empty dir)
                    break
                except OSError:
                    if not target.exists():
                        raise
            fsync_dir(parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return AdapterVersion(name, version, target, sha)
