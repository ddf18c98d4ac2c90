"""Message histories as hashes: how a call without ``X-Session-Id`` finds its session.

A message is hashed from what the model reads of it — role, text, tool calls, tool call
id, name — so a client that sends the same message once as a string and once as a list of
text parts gives one hash. A *prefix hash* chains the hashes of the first ``i`` messages:
two calls share the prefix hash of length ``i`` exactly when their first ``i`` messages
are the same. The matching rule itself is in :mod:`tentalis.gateway.proxy.sessions`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

INSTRUCTION_ROLES = frozenset({"system", "developer"})


def _text(content: Any) -> Any:
    """A message's content, with a list of text parts read as their joined text."""
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" for p in content
    ):
        return "".join(str(p.get("text") or "") for p in content)
    return content


def message_hash(message: dict[str, Any]) -> str:
    """The hash of one message (what the model reads of it)."""
    key = {
        "role": message.get("role"),
        "content": _text(message.get("content")),
        "tool_calls": message.get("tool_calls") or None,
        "tool_call_id": message.get("tool_call_id"),
        "name": message.get("name"),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def prefix_hashes(messages: Sequence[dict[str, Any]]) -> list[str]:
    """``out[i]`` is the hash of ``messages[: i + 1]``."""
    out, chain = [], ""
    for m in messages:
        chain = hashlib.sha256((chain + message_hash(m)).encode()).hexdigest()[:32]
        out.append(chain)
    return out


def conversational(messages: Sequence[dict[str, Any]]) -> list[int]:
    """``out[i]``: how many of ``messages[: i + 1]`` are not system/developer messages."""
    out, count = [], 0
    for m in messages:
        count += m.get("role") not in INSTRUCTION_ROLES
        out.append(count)
    return out


def after_summary(messages: Sequence[dict[str, Any]]) -> int | None:
    """Where a compacted history's kept messages start: after the leading instructions and
    the one message that follows them (the summary); None when nothing follows it."""
    first = next((i for i, m in enumerate(messages) if m.get("role") not in INSTRUCTION_ROLES),
                 None)
    if first is None or first + 1 >= len(messages):
        return None
    return first + 1
