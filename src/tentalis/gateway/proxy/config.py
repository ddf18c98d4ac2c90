"""``ProxyConfig``: where the intercept proxy forwards, and how it records."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class ProxyConfig(BaseModel):
    """The intercept proxy's settings (``services.gateway.proxy_config`` builds them from
    :class:`~tentalis.config.Settings`)."""

    model_config = ConfigDict(frozen=True)

    backend_url: str = Field(description="OpenAI-compatible server root or its /v1 URL.")
    backend_api_key: SecretStr | None = Field(default=None, description="Sent to the backend.")
    timeout_s: float = Field(default=600.0, gt=0, description="Per backend call.")
    spool_path: Path = Field(description="Where events wait while the bus is down.")
    source: str = Field(default="proxy", description="`source` of the events it publishes.")
    max_sessions: int = Field(default=10_000, ge=1, description="Sessions tracked in memory.")
    sessions_path: Path | None = Field(
        default=None, description="SQLite file of session turn counters, kept across "
        "restarts (default: beside the spool, `<spool name>.sessions.sqlite3`).")
    max_connections: int = Field(default=512, ge=1, description="Pooled backend connections.")
    training_data: bool = Field(
        default=True, description="Ask the backend for token ids and logprobs on every "
        "trainable call (stripped from the answer when the client did not ask).")
    session_min_messages: int = Field(
        default=1, ge=1, description="Conversational messages a call must share with a "
        "known session to continue it without X-Session-Id.")
    side_turn_pattern: str | None = Field(
        default=None, description="Regular expression: a call without a turn header whose "
        "system messages or last message match it is a side turn.")

    @field_validator("side_turn_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value or None

    @field_validator("backend_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8300")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("must not carry credentials, a query or a fragment "
                             "(use INTERCEPT_BACKEND_API_KEY for the key)")
        return value

    @property
    def root(self) -> str:
        """The backend URL without a trailing ``/v1`` (routes add their ``/v1/...``)."""
        url = self.backend_url.rstrip("/")
        return url[:-3] if url.endswith("/v1") else url

    @property
    def sessions_file(self) -> Path:
        """Where session states persist (a :class:`~.sessions.SessionFile`)."""
        if self.sessions_path is not None:
            return self.sessions_path
        return self.spool_path.with_name(f"{self.spool_path.stem}.sessions.sqlite3")

    @property
    def side_rule(self) -> re.Pattern[str] | None:
        return re.compile(self.side_turn_pattern) if self.side_turn_pattern else None

    def upstream_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.backend_api_key is not None:
            headers["authorization"] = f"Bearer {self.backend_api_key.get_secret_value()}"
        return headers
