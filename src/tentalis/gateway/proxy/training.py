"""Training data from every trainable call: what the proxy asks the backend for, and what
it takes back out of the answer before the client sees it.

On a trainable call the proxy adds to the backend request whatever the client did not ask
for of ``return_token_ids: true`` (vLLM's extension, also tentalis's model server's: the
prompt token ids the backend used and each choice's completion token ids) and
``logprobs`` (``true`` for chat, ``0`` for text completions: the chosen tokens' own
log-probabilities). The recorded SessionEvent takes them from the full answer; the client
gets the answer without the fields it did not ask for, streamed or not. A backend that
returns none of them (it ignores the extension) is recorded with ``None``; one that
refuses the request because of an added field is asked again without them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrainingAsk:
    """The fields the proxy added to one backend request."""

    added: dict[str, Any] = field(default_factory=dict)

    @property
    def strip_token_ids(self) -> bool:
        return "return_token_ids" in self.added

    @property
    def strip_logprobs(self) -> bool:
        return "logprobs" in self.added

    def refused_by(self, message: str) -> bool:
        """Whether a backend's error message names one of the added fields."""
        return any(name in message for name in self.added)


def ask_for_training_data(payload: dict[str, Any], *, chat: bool
                          ) -> tuple[dict[str, Any], TrainingAsk]:
    """``payload`` with token ids and logprobs requested, and what was added."""
    added: dict[str, Any] = {}
    if not payload.get("return_token_ids"):
        added["return_token_ids"] = True
    if chat and not payload.get("logprobs"):
        added["logprobs"] = True
    if not chat and payload.get("logprobs") is None:
        added["logprobs"] = 0
    return {**payload, **added}, TrainingAsk(added)


def strip_fields(data: dict[str, Any], ask: TrainingAsk) -> bool:
    """Remove from one response (or stream chunk) what the client did not ask for; True
    when something was removed."""
    changed = False
    if ask.strip_token_ids and data.pop("prompt_token_ids", None) is not None:
        changed = True
    for choice in data.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if ask.strip_token_ids:
            for key in ("token_ids", "prompt_token_ids"):
                if key in choice:
                    del choice[key]
                    changed = True
        if ask.strip_logprobs and choice.get("logprobs") is not None:
            choice["logprobs"] = None
            changed = True
    return changed


def strip_body(body: bytes, ask: TrainingAsk) -> bytes:
    """A non-streamed answer without the added fields (unchanged if none were added)."""
    if not ask.added:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or not strip_fields(data, ask):
        return body
    return json.dumps(data, separators=(",", ":")).encode()


class StreamStripper:
    """Removes the added fields from an SSE stream, event by event as events complete
    (bytes of an unfinished event wait for the rest of it)."""

    def __init__(self, ask: TrainingAsk) -> None:
        self.ask = ask
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        if not self.ask.added:
            return chunk
        data = (self._pending + chunk).replace(b"\r\n", b"\n")
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        self._pending = data[end + 2 :]
        return b"".join(self._event(e) for e in data[: end + 2].split(b"\n\n")[:-1])

    def flush(self) -> bytes:
        rest, self._pending = self._pending, b""
        return self._event(rest)[:-2] if rest else b""

    def _event(self, event: bytes) -> bytes:
        lines = []
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                line = self._data(line)
            lines.append(line)
        return b"\n".join(lines) + b"\n\n"

    def _data(self, line: bytes) -> bytes:
        payload = line[5:].strip()
        if not payload.startswith(b"{"):
            return line
        try:
            data = json.loads(payload)
        except ValueError:
            return line
        if not isinstance(data, dict) or not strip_fields(data, self.ask):
            return line
        return b"data: " + json.dumps(data, separators=(",", ":")).encode()
