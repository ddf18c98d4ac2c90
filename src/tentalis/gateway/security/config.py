"""``SecurityConfig``: how a gateway server guards itself; the bind and cap checks.

What the guard does with it is described in :mod:`tentalis.gateway.security`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from tentalis.errors import ConfigError
from tentalis.gateway.security.keys import KeyEntry, KeyRing, hash_key


class SecurityConfig(BaseModel):
    """How a gateway server guards itself; see the module doc for the behaviour."""

    model_config = ConfigDict(frozen=True)

    key_hashes: tuple[str, ...] = Field(
        default=(), description="Accepted keys as `hmac-sha256$salt$digest` entries."
    )
    max_body_bytes: int = Field(default=4 << 20, ge=1, description="Largest request body.")
    max_n: int = Field(default=8, ge=1, description="Largest `n` (choices per request).")
    max_tokens: int = Field(default=4096, ge=1, description="Largest `max_tokens`.")
    max_messages: int = Field(default=256, ge=1, description="Most messages/prompts per call.")
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Per key; 0 = off.")
    rate_limit_burst: int | None = Field(default=None, ge=1, description="Default: 1 minute.")
    public_paths: tuple[str, ...] = Field(default=("/health",), description="No key needed.")

    _ring: KeyRing = PrivateAttr(default_factory=KeyRing)

    def model_post_init(self, __context: Any) -> None:
        try:
            self._ring = KeyRing([KeyEntry.parse(h) for h in self.key_hashes])
        except ValueError as exc:
            raise ConfigError(f"invalid API key hash: {exc}") from None

    @property
    def key_ring(self) -> KeyRing:
        return self._ring

    @property
    def requires_keys(self) -> bool:
        return bool(self._ring)

    @classmethod
    def with_keys(cls, *keys: str, **fields: Any) -> SecurityConfig:
        """A config accepting these plaintext keys (hashed here; for tests and scripts)."""
        return cls(key_hashes=tuple(hash_key(k) for k in keys), **fields)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, config: SecurityConfig) -> None:
    """Refuse to serve on a non-loopback address without API keys."""
    if not config.requires_keys and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host} without API keys: anyone on the network could use "
            f"the server. Add a key (`tentalis keys add`, or GATEWAY_API_KEYS) or bind "
            f"127.0.0.1."
        )


def check_caps(
    n: int | None,
    max_tokens: int | None,
    messages: Sequence[Any] | None,
    config: SecurityConfig,
) -> None:
    """Refuse (HTTP 400) a request over the configured caps, saying which and by how much."""
    problems = []
    if n is not None and not 1 <= n <= config.max_n:
        problems.append(f"n={n} is outside 1..{config.max_n}")
    if max_tokens is not None and not 1 <= max_tokens <= config.max_tokens:
        problems.append(f"max_tokens={max_tokens} is outside 1..{config.max_tokens}")
    if messages is not None and len(messages) > config.max_messages:
        problems.append(f"{len(messages)} messages exceed the limit of {config.max_messages}")
    if problems:
        raise HTTPException(status_code=400, detail="; ".join(problems))
