"""Reading what the backend said: completions, token ids, logprobs; errors in OpenAI's shape.

A backend reports token ids in one of the shapes vLLM and tentalis' model server use:
``choices[i].token_ids`` (and ``prompt_token_ids``), or logprob entries whose token is
``token_id:<n>`` (vLLM's ``return_tokens_as_token_ids``). Logprobs come from the chat
shape (``logprobs.content[*].logprob``) or the completions shape
(``logprobs.token_logprobs``). Whatever is missing stays ``None``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import JSONResponse

from tentalis.gateway.security.guard import error_body


@dataclass
class Choice:
    """One choice of a completion, as recorded in a SessionEvent."""

    index: int = 0
    text: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None

    @property
    def completion(self) -> str:
        """The text, or the tool calls as JSON when the model only called tools."""
        if self.text or not self.tool_calls:
            return self.text
        return json.dumps(self.tool_calls, sort_keys=True)


@dataclass
class Answer:
    model: str | None = None
    adapter: str | None = None
    prompt_token_ids: list[int] | None = None
    choices: dict[int, Choice] = field(default_factory=dict)

    def choice(self, index: int) -> Choice:
        return self.choices.setdefault(index, Choice(index=index))


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def _logprobs(lp: Any, choice: Choice) -> None:
    """Append the logprobs (and ``token_id:`` ids) of one message or chunk to ``choice``."""
    if not isinstance(lp, dict):
        return
    entries = lp.get("content")
    if isinstance(entries, list):
        values = [e.get("logprob") for e in entries if isinstance(e, dict)]
        tokens = [e.get("token") for e in entries if isinstance(e, dict)]
    else:
        values = lp.get("token_logprobs") or []
        tokens = lp.get("tokens") or []
    if values and all(isinstance(v, int | float) for v in values):
        choice.logprobs = (choice.logprobs or []) + [float(v) for v in values]
    if tokens and all(isinstance(t, str) and t.startswith("token_id:") for t in tokens):
        try:
            ids = [int(t.split(":", 1)[1]) for t in tokens]
        except ValueError:
            return
        choice.token_ids = (choice.token_ids or []) + ids


def _absorb(data: dict[str, Any], answer: Answer, *, delta: bool) -> None:
    """Fold one response (``delta=False``) or one stream chunk into ``answer``."""
    answer.model = data.get("model") or answer.model
    answer.adapter = data.get("adapter") or answer.adapter
    answer.prompt_token_ids = _ints(data.get("prompt_token_ids")) or answer.prompt_token_ids
    for raw in data.get("choices") or []:
        if not isinstance(raw, dict):
            continue
        choice = answer.choice(int(raw.get("index") or 0))
        body = raw.get("delta" if delta else "message") or {}
        text = body.get("content") if isinstance(body, dict) else None
        if text is None:
            text = raw.get("text")
        if isinstance(text, str):
            choice.text += text
        calls = body.get("tool_calls") if isinstance(body, dict) else None
        if isinstance(calls, list):
            _tool_calls(choice, calls, delta=delta)
        choice.finish_reason = raw.get("finish_reason") or choice.finish_reason
        _logprobs(raw.get("logprobs"), choice)
        ids = _ints(raw.get("token_ids"))
        if ids is not None:
            choice.token_ids = (choice.token_ids or []) + ids
        answer.prompt_token_ids = _ints(raw.get("prompt_token_ids")) or answer.prompt_token_ids


def _tool_calls(choice: Choice, calls: list[Any], *, delta: bool) -> None:
    if not delta:
        choice.tool_calls = [c for c in calls if isinstance(c, dict)]
        return
    for part in calls:  # streamed tool calls arrive as fragments keyed by index
        if not isinstance(part, dict):
            continue
        i = int(part.get("index") or 0)
        while len(choice.tool_calls) <= i:
            blank = {"name": "", "arguments": ""}
            choice.tool_calls.append({"type": "function", "function": blank})
        call = choice.tool_calls[i]
        if part.get("id"):
            call["id"] = part["id"]
        fn = part.get("function") or {}
        call["function"]["name"] += fn.get("name") or ""
        call["function"]["arguments"] += fn.get("arguments") or ""


def parse_response(body: bytes) -> Answer:
    """A non-streamed completion's body (an empty Answer if it is not JSON)."""
    answer = Answer()
    try:
        data = json.loads(body)
    except ValueError:
        return answer
    if isinstance(data, dict):
        _absorb(data, answer, delta=False)
    return answer


def parse_stream(raw: bytes) -> Answer:
    """A whole SSE stream (``data: {...}`` events, ``data: [DONE]``) folded into one answer."""
    answer = Answer()
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == b"[DONE]":
            continue
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        if isinstance(data, dict):
            _absorb(data, answer, delta=True)
    return answer


def upstream_error_message(body: bytes) -> str:
    """The backend's own error message, if its body has one."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:300].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if data.get("detail"):
            return str(data["detail"])
    return ""


def error_response(status: int, message: str) -> JSONResponse:
    """An OpenAI-shaped error (the message must already be redacted)."""
    return JSONResponse(error_body(status, message), status_code=status)


def sse_error(status: int, message: str) -> bytes:
    """An error event for a stream that broke after it started."""
    return b"data: " + json.dumps(error_body(status, message)).encode() + b"\n\n"
