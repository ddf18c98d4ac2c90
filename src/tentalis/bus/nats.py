"""The Bus on NATS JetStream (nats-py).

Events live in one file-backed stream (``Subjects.STREAM`` over ``Subjects.ALL``) with
limits retention, so every consumer name reads the full log and acks independently; a
second stream keeps JetStream's max-deliveries advisories for the dead letters of
:mod:`tentalis.bus.exhausted`. A
consumer is a JetStream *pull* consumer: processes that use the same durable name share
its messages (queue-group delivery); fetch timeouts mean "nothing yet" and the loop goes
on. Request/reply runs on core NATS (not persisted); health lives in a KV bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.kv import KeyValue

from tentalis.bus.base import (
    BusInfo,
    ConsumerInfo,
    ConsumerSpec,
    Delivery,
    EventHandler,
    RequestHandler,
)
from tentalis.bus.exhausted import advisory_stream_config
from tentalis.bus.pull import nats_call, pull_batches
from tentalis.bus.wire import error_reply, health_key
from tentalis.errors import BusError, EventDecodeError
from tentalis.events import Event, Subjects, decode_event

log = logging.getLogger(__name__)

_HINT = "start one with `tentalis serve` or set NATS_URL"


class NatsBus:
    """The Bus protocol on NATS JetStream. ``await bus.connect()`` before use."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = Subjects.STREAM,
        max_age_days: float = 7.0,
        duplicate_window: float = 120.0,
        connect_timeout: float = 2.0,
        health_ttl: float = 3600.0,
        request_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.max_age_days = max_age_days
        self.duplicate_window = duplicate_window
        self.connect_timeout = connect_timeout
        self.health_ttl = health_ttl
        self.request_timeout = request_timeout
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._closed = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect, then create or update the event stream and the health bucket."""
        self._closed = asyncio.Event()
        nc = NATS()
        first_error: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

        async def on_error(exc: Exception) -> None:
            if not first_error.done():  # a refused first connect fails fast, not at timeout
                first_error.set_result(exc)
            elif self._nc is not None:
                log.warning("NATS connection to %s: %s: %s", self.url, type(exc).__name__, exc)

        connecting = asyncio.ensure_future(
            nc.connect(
                servers=[self.url],
                connect_timeout=self.connect_timeout,
                max_reconnect_attempts=-1,  # once connected, reconnect forever
                reconnect_time_wait=1,
                error_cb=on_error,
                name="tentalis",
            )
        )
        await asyncio.wait(
            {connecting, first_error},
            timeout=self.connect_timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not connecting.done() or connecting.exception() is not None:
            error = first_error.result() if first_error.done() else None
            if connecting.done():
                error = connecting.exception()
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            with contextlib.suppress(Exception):
                await nc.close()
            why = (
                f"{type(error).__name__}: {error}"
                if error is not None
                else f"no answer within {self.connect_timeout:g}s"
            )
            raise BusError(f"cannot reach NATS at {self.url} ({why}); {_HINT}")
        first_error.cancel()
        self._nc, self._js = nc, nc.jetstream(timeout=self.request_timeout)
        try:
            await self._ensure_stream()
            await self._ensure_health_bucket()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """End every consume iterator, flush pending acks and disconnect."""
        self._closed.set()
        nc, self._nc, self._js, self._kv = self._nc, None, None, None
        if nc is None:
            return
        await asyncio.sleep(0)  # let iterators see the closed flag before the socket goes
        with contextlib.suppress(Exception):
            await nc.flush(timeout=1)
        with contextlib.suppress(Exception):
            await nc.close()

    @property
    def connected(self) -> bool:
        """True while the connection is up (False before connect, after close, and while
        the client reconnects)."""
        return self._nc is not None and self._nc.is_connected

    def _require(self) -> tuple[NATS, JetStreamContext]:
        if self._nc is None or self._js is None:
            raise BusError(f"bus for {self.url} is not connected; call `await bus.connect()`")
        return self._nc, self._js

    async def _ensure_stream(self) -> None:
        _, js = self._require()
        config = js_api.StreamConfig(
            name=self.stream,
            subjects=[Subjects.ALL],
            retention=js_api.RetentionPolicy.LIMITS,
            storage=js_api.StorageType.FILE,
            max_age=self.max_age_days * 86400.0,
            duplicate_window=self.duplicate_window,
        )
        try:
            for stream_config in (config, advisory_stream_config(self.stream, config.max_age)):
                try:
                    await js.add_stream(stream_config)
                except nats.js.errors.BadRequestError:  # exists with another config
                    await js.update_stream(stream_config)
        except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
            raise BusError(
                f"JetStream is not enabled on the NATS server at {self.url}; "
                "run nats-server with -js"
            ) from None
        except nats.errors.Error as exc:
            raise BusError(f"cannot create stream {self.stream} at {self.url}: {exc}") from exc

    async def _ensure_health_bucket(self) -> None:
        _, js = self._require()
        try:
            self._kv = await js.key_value(Subjects.HEALTH_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await js.create_key_value(
                bucket=Subjects.HEALTH_BUCKET, history=1, ttl=self.health_ttl
            )

    # --- publish --------------------------------------------------------------------------
    async def publish(self, event: Event) -> bool:
        return await self.publish_raw(event.subject(), event.to_bytes(), event.event_id)

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str | None = None) -> bool:
        _, js = self._require()
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        try:
            ack = await js.publish(subject, payload, headers=headers)
        except nats.js.errors.NoStreamResponseError:
            raise BusError(
                f"no stream stores subject {subject!r} (tentalis events live under {Subjects.ALL})"
            ) from None
        except nats.errors.Error as exc:
            raise BusError(f"publish to {subject!r} failed: {type(exc).__name__}: {exc}") from exc
        return not ack.duplicate

    # --- consume --------------------------------------------------------------------------
    def consume(self, spec: ConsumerSpec) -> AsyncIterator[list[Delivery]]:
        _, js = self._require()
        return pull_batches(js, self.stream, spec, self._closed, self.publish)

    # --- live view ----------------------------------------------------------------------
    async def listen(
        self, subjects: Sequence[str], handler: EventHandler
    ) -> Callable[[], Awaitable[None]]:
        nc, _ = self._require()

        async def on_msg(msg: Msg) -> None:
            try:
                event = decode_event(msg.data)
            except EventDecodeError:
                return
            try:
                await handler(event)
            except Exception:
                log.exception("listener on %s failed", msg.subject)

        subs = [await nc.subscribe(s, cb=on_msg) for s in subjects]
        await nc.flush()

        async def stop() -> None:
            for sub in subs:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

        return stop

    # --- request / reply ------------------------------------------------------------------
    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        nc, _ = self._require()
        try:
            reply = await nc.request(subject, payload, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise BusError(f"nothing serves {subject!r} at {self.url}") from None
        except nats.errors.TimeoutError:
            raise BusError(f"no reply on {subject!r} within {timeout:g}s") from None
        except nats.errors.Error as exc:
            raise BusError(f"request on {subject!r} failed: {exc}") from exc
        return reply.data

    async def serve(
        self, subject: str, handler: RequestHandler, queue: str | None = None
    ) -> Callable[[], Awaitable[None]]:
        nc, _ = self._require()
        running: set[asyncio.Task[None]] = set()

        async def answer(msg: Msg) -> None:
            try:
                reply = await handler(msg.data)
            except Exception as exc:
                log.exception("request handler on %s failed", subject)
                reply = error_reply(exc)
            if msg.reply:
                with contextlib.suppress(nats.errors.Error):
                    await nc.publish(msg.reply, reply)

        async def on_msg(msg: Msg) -> None:  # one task per request: a slow one blocks no other
            task = asyncio.create_task(answer(msg))
            running.add(task)
            task.add_done_callback(running.discard)

        sub = await nc.subscribe(subject, queue=queue or "", cb=on_msg)

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

        return stop

    # --- health & info --------------------------------------------------------------------
    async def put_health(self, key: str, value: dict[str, Any]) -> None:
        self._require()
        assert self._kv is not None
        data = json.dumps(value, default=str).encode()
        await nats_call(self._kv.put(health_key(key), data), "health put")

    async def get_health(self) -> dict[str, dict[str, Any]]:
        self._require()
        kv = self._kv
        assert kv is not None
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for key in keys:
            try:
                value = json.loads((await kv.get(key)).value or b"null")
            except (nats.js.errors.KeyNotFoundError, ValueError):
                continue  # expired meanwhile, or not written by us
            if isinstance(value, dict):
                out[key] = value
        return out

    async def info(self) -> BusInfo:
        _, js = self._require()
        try:
            stream = await js.stream_info(self.stream, subjects_filter=Subjects.ALL)
            consumers = await js.consumers_info(self.stream)
        except nats.errors.Error as exc:
            raise BusError(f"cannot read stream info at {self.url}: {exc}") from exc
        return BusInfo(
            url=self.url,
            stream=self.stream,
            messages=stream.state.messages,
            bytes=stream.state.bytes,
            subjects=dict(stream.state.subjects or {}),
            consumers=[
                ConsumerInfo(
                    name=c.name,
                    pending=c.num_pending or 0,
                    ack_pending=c.num_ack_pending or 0,
                    redelivered=c.num_redelivered or 0,
                    filter_subjects=list(c.config.filter_subjects or [])
                    or ([c.config.filter_subject] if c.config.filter_subject else []),
                )
                for c in consumers
            ],
        )
