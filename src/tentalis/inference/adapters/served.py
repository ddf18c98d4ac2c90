"""``ServedAdapters``: which adapter versions the model server has loaded, under which names.

Only versions in the :class:`~tentalis.inference.adapters.AdapterStore` can be loaded; a
``lora_path`` is resolved to ``(name, version)`` and the result must lie inside the store
after resolving symlinks (see :meth:`ServedAdapters.resolve_path`). Each loaded version is
one adapter of the inference engine (internal name ``<name>.v<version>``), shared by every
``lora_name`` that points at it.

Model names a request may use:

- ``base`` (or the base model's own name): no adapter;
- ``<lora_name>``: the version that name was last loaded with (loading a name again
  repoints it: the hot swap);
- ``<name>@<version>``: that loaded version of store adapter (or lora name) ``name``.

Zero failed requests across a swap: a request holds its version (:meth:`use`) until it is
answered, and a version no name points at any more is unloaded from the engine only when
its last request is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from tentalis.errors import AdapterError
from tentalis.inference.adapters.store import AdapterStore, AdapterVersion, validate_adapter_name
from tentalis.inference.base import BASE_ADAPTER, InferenceClient

Key = tuple[str, int]  # (store adapter name, version)

_REF = re.compile(r"^([^/@\\]+)@(\d+|latest)$")
_REL = re.compile(r"^([^/@\\]+)/v(\d+)/?$")


class AdapterRequestError(AdapterError):
    """A bad adapter request (HTTP 400)."""


class AdapterNotFound(AdapterError):
    """No such adapter or version (HTTP 404)."""


class ServedAdapters:
    """Loaded adapter versions and the names that point at them."""

    def __init__(self, inference: InferenceClient, store: AdapterStore) -> None:
        self.inference = inference
        self.store = store
        self._names: dict[str, Key] = {}  # lora_name -> version, in load order
        self._loaded: set[Key] = set()
        self._in_flight: dict[Key, int] = {}
        self._lock = asyncio.Lock()

    # --- resolving ----------------------------------------------------------------------
    def resolve_path(self, lora_path: str) -> AdapterVersion:
        """The store version ``lora_path`` names; never a path outside the store."""
        text = lora_path.strip()
        if m := _REF.match(text):
            return self._version(m.group(1), None if m.group(2) == "latest" else int(m.group(2)))
        if m := _REL.match(text):
            return self._version(m.group(1), int(m.group(2)))
        if "/" not in text and "\\" not in text:
            return self._version(text, None)
        path = Path(text)
        if not path.is_absolute() or ".." in path.parts:
            raise AdapterRequestError(
                "lora_path must be <name>@<version>, <name>, <name>/v<version>, or an "
                "absolute path inside the adapter store (no '..')"
            )
        rel = self._inside_store(path)
        if rel is None or len(rel.parts) != 2 or not re.fullmatch(r"v\d+", rel.parts[1]):
            raise AdapterRequestError("lora_path is not a version directory of the adapter store")
        return self._version(rel.parts[0], int(rel.parts[1][1:]))

    def _inside_store(self, path: Path) -> Path | None:
        root = self.store.root.resolve()
        try:
            return path.resolve().relative_to(root)
        except (ValueError, OSError):
            return None

    def _version(self, name: str, version: int | None) -> AdapterVersion:
        try:
            validate_adapter_name(name)
        except AdapterError as exc:
            raise AdapterRequestError(str(exc)) from None
        versions = self.store.versions(name)
        if not versions:
            raise AdapterNotFound(f"the adapter store has no adapter {name!r}")
        if version is None:
            version = versions[-1]
        if version not in versions:
            raise AdapterNotFound(f"adapter {name!r} has no version {version} (have {versions})")
        found = self.store.get(name, version)
        rel = self._inside_store(found.path)  # a symlink planted in the store stays refused
        if rel is None or rel.parts != (name, f"v{version}"):
            raise AdapterRequestError(f"{name}@{version} resolves outside the adapter store")
        return found

    def resolve_model(self, model: str) -> Key | None:
        """The version a request's ``model`` names (None: the base model)."""
        if model in (BASE_ADAPTER, self.inference.model_name):
            return None
        if model in self._names:
            return self._names[model]
        name, sep, ver = model.rpartition("@")
        if sep and ver.isdigit():
            key = self._names.get(name, (name, int(ver)))
            key = (key[0], int(ver))
            if key in self._loaded and key in self._names.values():
                return key
        raise AdapterNotFound(
            f"model {model!r} is not served; available: {', '.join(self.model_ids())}"
        )

    def serving(self, lora_name: str) -> Key | None:
        """The version ``lora_name`` points at now (None: no such name is loaded)."""
        return self._names.get(lora_name)

    def version_dir(self, name: str, version: int) -> Path:
        """Where the store keeps ``name``@``version`` (it may not exist; :meth:`load` checks)."""
        try:
            validate_adapter_name(name)
        except AdapterError as exc:
            raise AdapterRequestError(str(exc)) from None
        return self.store.root / name / f"v{int(version)}"

    @staticmethod
    def internal(key: Key | None) -> str | None:
        """The engine's adapter name for a version (None for the base model)."""
        return None if key is None else f"{key[0]}.v{key[1]}"

    def model_ids(self) -> list[str]:
        """``base``, every lora name, and ``<name>@<version>`` of every loaded version."""
        versions = sorted(set(self._names.values()))
        return [BASE_ADAPTER, *self._names, *(f"{n}@{v}" for n, v in versions)]

    # --- using --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def use(self, model: str) -> AsyncIterator[str | None]:
        """Hold the version ``model`` names while a request runs; yields the engine name."""
        key = self.resolve_model(model)
        if key is None:
            yield None
            return
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield self.internal(key)
        finally:
            self._in_flight[key] -= 1
            if not self._in_flight[key]:
                del self._in_flight[key]
                await self._drop_if_orphaned(key)

    # --- loading ------------------------------------------------------------------------
    async def load(self, lora_name: str, lora_path: str, sha256: str | None = None) -> Key:
        """Point ``lora_name`` at the store version ``lora_path`` names, loading it first."""
        try:
            validate_adapter_name(lora_name)
        except AdapterError as exc:
            raise AdapterRequestError(str(exc)) from None
        if lora_name == BASE_ADAPTER:
            raise AdapterRequestError(f"{BASE_ADAPTER!r} names the base model")
        version = await asyncio.to_thread(self.resolve_path, lora_path)
        if sha256 is not None and sha256 != version.sha256:
            raise AdapterRequestError(
                f"{version.name}@{version.version} has sha256 {version.sha256[:12]}…, "
                f"not the {sha256[:12]}… asked for"
            )
        key = (version.name, version.version)
        async with self._lock:
            if key not in self._loaded:
                await self.inference.load_adapter(self.internal(key) or "", str(version.path))
                self._loaded.add(key)
            old = self._names.pop(lora_name, None)
            self._names[lora_name] = key  # re-inserted: the latest load is listed last
        if old is not None and old != key:
            await self._drop_if_orphaned(old)
        return key

    async def unload(self, lora_name: str) -> None:
        """Drop ``lora_name`` (or ``<name>@<version>``: every name on that version)."""
        if lora_name in self._names:
            key = self._names.pop(lora_name)
        else:
            key = self.resolve_model(lora_name) if "@" in lora_name else None
            if key is None:
                raise AdapterNotFound(f"no adapter named {lora_name!r} is loaded")
            for name in [n for n, k in self._names.items() if k == key]:
                del self._names[name]
        await self._drop_if_orphaned(key)

    async def _drop_if_orphaned(self, key: Key) -> None:
        async with self._lock:
            if key in self._loaded and key not in self._names.values() \
                    and not self._in_flight.get(key):
                self._loaded.discard(key)
                await self.inference.unload_adapter(self.internal(key) or "")
