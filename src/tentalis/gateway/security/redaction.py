"""Redaction: secrets out of every log line, event and error message.

:func:`redact` removes, wherever they appear in a text:

- bearer tokens and ``Authorization`` / ``X-API-Key`` header values (any quoting);
- ``key=``, ``api_key=``, ``apikey=``, ``access_token=``, ``token=``, ``secret=``,
  ``password=`` values, as query parameters, form fields or ``"api_key": "…"`` JSON;
- tokens shaped like API keys (``tnt-…`` from :func:`~tentalis.gateway.security.keys.generate_key`,
  OpenAI/Anthropic ``sk-…``);
- any token that *is* a configured gateway key: candidate words are hashed with the key
  ring's salts and checked against its digests, so a key pasted into a prompt is found
  although its plaintext is kept nowhere;
- exact secrets registered with :func:`register_secret` (e.g. the upstream API key).

:class:`RedactingFilter` applies it to log records (message, arguments and traceback);
:func:`install_log_redaction` puts it on the root handlers and the uvicorn loggers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
from typing import Any

from tentalis.gateway.security.keys import KeyRing

MASK = "***"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer x / Basic x, in headers, reprs and dicts
    (re.compile(r"(?i)(authorization[\"']?\s*[:=,]\s*[\"']?(?:bearer|basic|token)?\s*)"
                r"[^\s\"',;}\]]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+"), r"\1" + MASK),
    # x-api-key: v, "api_key": "v", api_key=v, ?key=v&…
    (re.compile(r"(?i)((?:x-api-key|api[_-]?key|apikey|access[_-]?token|secret|password)"
                r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',&;}\]]+"), r"\1" + MASK),
    (re.compile(r"(?i)([?&;](?:key|token|auth|sig|signature)=)[^&\s\"'#]+"), r"\1" + MASK),
    # well-known key shapes
    (re.compile(r"\btnt-[A-Za-z0-9_\-]{16,}"), MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"), MASK),
]
_CANDIDATE = re.compile(r"[A-Za-z0-9_\-.~+/=]{12,}")

_lock = threading.Lock()
_rings: list[KeyRing] = []
_secrets: set[str] = set()


def register_key_ring(ring: KeyRing) -> None:
    """Redact any token that is one of ``ring``'s keys (idempotent)."""
    with _lock:
        if ring and not any(r is ring for r in _rings):
            _rings.append(ring)


def register_secret(secret: str | None) -> None:
    """Redact this exact value wherever it appears (ignored if shorter than 6 chars)."""
    if secret and len(secret) >= 6:
        with _lock:
            _secrets.add(secret)


def _is_known_key(word: str) -> bool:
    for ring in _rings:
        for salt in ring.salts:
            digest = hmac.new(salt, word.encode(), hashlib.sha256).digest()
            if any(hmac.compare_digest(digest, e.digest) for e in ring.entries):
                return True
    return False


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    """``text`` with every secret it holds replaced by ``***`` (see the module doc)."""
    if not text:
        return text
    for secret in (*_secrets, *extra):
        if secret:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    if _rings:
        text = _CANDIDATE.sub(lambda m: MASK if _is_known_key(m.group(0)) else m.group(0), text)
    return text


def redact_value(value: Any) -> Any:
    """:func:`redact` through strings inside dicts, lists and tuples (a copy)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message, arguments and traceback.

    The record is rewritten in place, so every handler after it sees only redacted text:
    the arguments are redacted one by one when that cleans the message (uvicorn's access
    formatter needs them as a tuple), else ``msg`` becomes the redacted, formatted text
    and ``args`` empty."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        clean = redact(message)
        if clean != message and not self._redact_args(record):
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True

    @staticmethod
    def _redact_args(record: logging.LogRecord) -> bool:
        """Redact the arguments one by one, keeping their shape (uvicorn's access
        formatter unpacks them); True if that leaves the message clean."""
        if not isinstance(record.args, tuple) or not isinstance(record.msg, str):
            return False
        args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        msg = redact(record.msg)
        try:
            text = msg % args if args else msg
        except (TypeError, ValueError):
            return False
        if redact(text) != text:
            return False
        record.msg, record.args = msg, args
        return True


REDACTED_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "httpx",
                    "tentalis")


def install_log_redaction(extra_loggers: tuple[str, ...] = ()) -> RedactingFilter:
    """Put one :class:`RedactingFilter` on the named loggers and on all their handlers.

    Filters on a logger apply only to records logged *at* that logger, and uvicorn's
    access log does not propagate, so the filter goes on every handler too (records
    propagated from child loggers pass through their parents' handlers). Idempotent."""
    filt = _installed or RedactingFilter()
    for name in (*REDACTED_LOGGERS, *extra_loggers):
        logger = logging.getLogger(name)
        if filt not in logger.filters:
            logger.addFilter(filt)
        for handler in logger.handlers:
            if filt not in handler.filters:
                handler.addFilter(filt)
    _remember(filt)
    return filt


_installed: RedactingFilter | None = None


def _remember(filt: RedactingFilter) -> None:
    global _installed
    _installed = filt
