"""``ProxyState``: the proxy's parts (backend client, session tracker, publisher) and
how a call becomes SessionEvents."""

from __future__ import annotations

from typing import Any

import httpx

from tentalis.events import SessionEvent, derived_id
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.proxy.sessions import SessionFile, SessionTracker, Turn
from tentalis.gateway.proxy.upstream import Answer, Choice
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import redact
from tentalis.gateway.security.redaction import redact_value


class ProxyState:
    """The proxy's parts: backend client, session tracker, publisher."""

    def __init__(
        self, config: ProxyConfig, publisher: EventPublisher, client: httpx.AsyncClient | None
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.tracker = SessionTracker(config.max_sessions, scrub=redact_value,
                                      file=SessionFile(config.sessions_file),
                                      min_prefix=config.session_min_messages,
                                      side_pattern=config.side_rule)
        self.client = client
        self._owns_client = client is None

    async def start(self) -> None:
        if self.client is None:
            limits = httpx.Limits(max_connections=self.config.max_connections,
                                  max_keepalive_connections=self.config.max_connections)
            self.client = httpx.AsyncClient(base_url=self.config.root, limits=limits,
                                            timeout=httpx.Timeout(self.config.timeout_s))
        await self.publisher.start()

    async def close(self) -> None:
        await self.publisher.close()
        if self.tracker.file is not None:
            self.tracker.file.close()
        if self._owns_client and self.client is not None:
            await self.client.aclose()
            self.client = None

    def record(self, turn: Turn, messages: list[Any], model: str, answer: Answer,
               latency_s: float, error: str | None) -> None:
        """Hand the call's SessionEvents (one per choice) to the publisher, and the link
        from the session's previous good main turn when this one succeeded."""
        link = self.tracker.finish(turn, messages, ok=error is None)
        if link is not None:
            self.publisher.submit(link)
        choices = sorted(answer.choices.values(), key=lambda c: c.index) or [Choice()]
        scrubbed = redact_value(messages)
        for c in choices:
            self.publisher.submit(SessionEvent(
                event_id=turn.event_id if c.index == 0 else derived_id(turn.event_id, str(c.index)),
                session_id=turn.session_id, task_id=turn.task_id, turn_index=turn.turn_index,
                trainable=turn.trainable and error is None, turn_type=turn.turn_type,
                messages=scrubbed,
                completion=redact(c.completion), prompt_token_ids=answer.prompt_token_ids,
                completion_token_ids=c.token_ids, logprobs=c.logprobs,
                finish_reason=f"error:{error}" if error else c.finish_reason or "incomplete",
                latency_s=latency_s, model=answer.model or model, adapter=answer.adapter,
                source=self.config.source,
            ))  # fmt: skip
