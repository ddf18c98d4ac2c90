"""Gateway API keys, kept only as salted HMAC-SHA256 digests.

A key file holds one entry per line, ``hmac-sha256$<salt hex>$<digest hex>`` optionally
followed by whitespace and a label; ``#`` starts a comment. ``tentalis keys add`` (or
:func:`add_key`) writes such lines, reusing the file's salt so that checking a presented
key costs one HMAC per distinct salt, not one per key. A plaintext line is accepted (one
key per line), hashed on load and never kept, with a warning to replace it.

Keys from the environment (``GATEWAY_API_KEYS``, comma-separated) are hashed at start-up
with a per-process salt; the plaintext is not stored by this module.

Keys are random tokens with ~190 bits of entropy, so a fast keyed hash is enough (the same
choice GitHub and Stripe make for API tokens); a slow password hash would only add
latency to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tentalis.errors import ConfigError

log = logging.getLogger(__name__)

SCHEME = "hmac-sha256"
KEY_PREFIX = "tnt-"  # generated keys carry it, so redaction recognises them anywhere


def generate_key() -> str:
    """A new random API key (``tnt-`` + 43 url-safe characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _digest(salt: bytes, key: str) -> bytes:
    return hmac.new(salt, key.encode("utf-8"), hashlib.sha256).digest()


def hash_key(key: str, salt: bytes | None = None) -> str:
    """The stored form of ``key``: ``hmac-sha256$<salt>$<digest>`` (a fresh salt if none)."""
    if not key or key != key.strip():
        raise ValueError("an API key must be non-empty and carry no surrounding whitespace")
    salt = salt if salt is not None else secrets.token_bytes(16)
    return f"{SCHEME}${salt.hex()}${_digest(salt, key).hex()}"


@dataclass(frozen=True)
class KeyEntry:
    """One stored key: its salt and digest (and an optional label, never the key)."""

    salt: bytes
    digest: bytes
    label: str = ""

    @property
    def key_id(self) -> str:
        """A short, stable, non-secret name for the key (rate limits, logs)."""
        return "key-" + self.digest.hex()[:12]

    @classmethod
    def parse(cls, line: str) -> KeyEntry:
        text, _, label = line.strip().partition(" ")
        try:
            scheme, salt_hex, digest_hex = text.split("$")
            if scheme != SCHEME:
                raise ValueError(scheme)
            salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
        except ValueError:
            raise ValueError(f"not a {SCHEME}$<salt>$<digest> entry") from None
        if len(digest) != 32 or not salt:
            raise ValueError("digest must be 32 bytes and salt non-empty")
        return cls(salt, digest, label.strip())


@dataclass
class KeyRing:
    """The accepted keys, as digests; checks a presented key in constant time."""

    entries: list[KeyEntry] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def salts(self) -> list[bytes]:
        return list(dict.fromkeys(e.salt for e in self.entries))

    def match(self, presented: str) -> KeyEntry | None:
        """The entry ``presented`` belongs to, or None. Every entry is compared (no early
        exit) with :func:`hmac.compare_digest`, so timing does not say which one matched."""
        digests = {salt: _digest(salt, presented) for salt in self.salts}
        found: KeyEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(digests[entry.salt], entry.digest):
                found = entry
        return found

    def add_plaintext(self, keys: Iterable[str], salt: bytes, label: str = "") -> None:
        for key in keys:
            if key := key.strip():
                self.entries.append(KeyEntry(salt, _digest(salt, key), label))

    @classmethod
    def load(cls, key_file: Path | None = None, env_keys: str | None = None) -> KeyRing:
        """Keys from ``key_file`` (hashed or plaintext lines) and comma-separated
        ``env_keys``; a missing file is an error only if it was named explicitly."""
        ring = cls()
        process_salt = secrets.token_bytes(16)
        if key_file is not None:
            ring.entries.extend(_read_file(Path(key_file), process_salt))
        if env_keys:
            ring.add_plaintext(env_keys.split(","), process_salt, "env")
        return ring


def _read_file(path: Path, process_salt: bytes) -> list[KeyEntry]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the API key file {path}: {exc.strerror}") from None
    entries: list[KeyEntry] = []
    plaintext = 0
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(SCHEME + "$"):
            try:
                entries.append(KeyEntry.parse(line))
            except ValueError as exc:
                raise ConfigError(f"{path}: malformed key entry: {exc}") from None
        else:
            plaintext += 1
            entries.append(KeyEntry(process_salt, _digest(process_salt, line), "plaintext"))
    if plaintext:
        log.warning(
            "%s holds %d plaintext API key(s); store hashes instead: "
            "`tentalis keys hash --file %s` rewrites them", path, plaintext, path
        )
    return entries


def file_salt(path: Path) -> bytes:
    """The salt of the first hashed entry in ``path``, or a fresh one."""
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith(SCHEME + "$"):
                return KeyEntry.parse(line).salt
    return secrets.token_bytes(16)


def add_key(path: Path, key: str | None = None, label: str = "") -> str:
    """Append the hash of ``key`` (a new random key if None) to ``path``; return the key.

    The file is created with mode 0600; the plaintext key is returned once, for the user
    to copy, and written nowhere."""
    key = key or generate_key()
    if any(c.isspace() for c in key) or "#" in key:
        raise ValueError("an API key may not contain whitespace or '#'")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = hash_key(key, file_salt(path)) + (f" {label.strip()}" if label.strip() else "")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


def rehash_file(path: Path) -> int:
    """Replace plaintext lines of ``path`` by their hashes; return how many changed."""
    path = Path(path).expanduser()
    salt = file_salt(path)
    out, changed = [], 0
    for raw in path.read_text(encoding="utf-8").splitlines():
        body = raw.split("#", 1)[0].strip()
        if body and not body.startswith(SCHEME + "$"):
            out.append(hash_key(body, salt))
            changed += 1
        else:
            out.append(raw)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return changed
