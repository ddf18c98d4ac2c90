"""``OpenAIInference``: any OpenAI-compatible server (vLLM, Ollama, llama.cpp, SGLang …).

Requests go out concurrently (at most ``max_concurrency`` at a time) through the official
``AsyncOpenAI`` client; the server does the batching. An adapter is selected by sending
its name as ``model`` (the vLLM convention for LoRA modules); adapters are loaded and
unloaded at run time through vLLM's ``/v1/load_lora_adapter`` and
``/v1/unload_lora_adapter`` (vLLM must run with ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; tentalis's model server speaks the same API).

Hot swap without failed requests: ``load_adapter(name, path)`` loads each version on the
server under a fresh name (``<name>-<8 hex>``), then points ``name`` at it, so requests
sent from then on use the new version; the previous version is unloaded once the requests
sent to it are answered. ``path`` is sent as ``lora_path``: a path the *server* can read
(vLLM), i.e. the version's directory in the shared adapter store; tentalis's model server
accepts only paths inside its own store (or ``<name>@<version>``). A server-side name
left behind by a process that died is not unloaded by anyone else.

Logprobs are requested when ``ChatRequest.logprobs`` is set; a server that rejects the
parameter is asked again without it, and not asked again. Token ids come back only from
servers that can send them (``token_ids=True`` asks vLLM for ``token_id:<n>`` tokens);
otherwise ``completion_token_ids`` is empty. vLLM reports logprobs of the raw model
distribution by default; other servers may report tempered ones.

``stream`` asks the server to stream (SSE) and hands each chunk on as a
:class:`~tentalis.inference.base.TokenDelta` with its text, as it arrives.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from tentalis.errors import AdapterError, InferenceError
from tentalis.inference.adapters import validate_adapter_name
from tentalis.inference.base import BASE_ADAPTER, ChatRequest, Completion, TokenDelta

log = logging.getLogger(__name__)


def _short(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _refuse_structured(requests: Sequence[ChatRequest]) -> None:
    if any(r.tools or r.constraint is not None for r in requests):
        raise InferenceError("tools and structured output are not supported through "
                             "INFERENCE_BACKEND=openai; call the backend directly")


class OpenAIInference:
    """An :class:`InferenceClient` for an OpenAI-compatible chat-completions server."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str = "default",
        *,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        token_ids: bool = False,
        max_retries: int = 2,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self._api_key = api_key or "EMPTY"  # local servers accept any key
        self._client = AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key,
            timeout=timeout,
            max_retries=max_retries,
        )
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        self._http = httpx.AsyncClient(
            base_url=root,
            timeout=timeout,
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        self._sem = asyncio.Semaphore(max_concurrency)
        self._token_ids = token_ids
        self._logprobs_supported = True
        self._served: dict[str, str] = {}  # adapter name -> server-side name of its version
        self._in_flight: dict[str, int] = {}  # server-side name -> requests not answered
        self.retire_timeout = timeout

    # --- chat ---------------------------------------------------------------------------
    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer every request concurrently; the i-th completion answers the i-th request.

        If one fails, the others still running are cancelled and its error is raised.
        Tools and output constraints are refused (InferenceError): the answer comes back as
        text, so calls would be lost; send such requests to the server directly."""
        _refuse_structured(requests)
        tasks = [asyncio.ensure_future(self._one(r)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            raise

    async def stream(self, requests: Sequence[ChatRequest]) -> AsyncIterator[TokenDelta]:
        """Every request streamed by the server, interleaved as chunks arrive; closing
        the iterator cancels the requests still running."""
        _refuse_structured(requests)
        queue: asyncio.Queue[TokenDelta | BaseException] = asyncio.Queue()

        async def run(i: int, req: ChatRequest) -> None:
            try:
                await self._one(req, lambda adapter, model: self._stream(
                    i, req, adapter, model, queue.put_nowait))
            except Exception as exc:
                queue.put_nowait(exc)

        tasks = [asyncio.ensure_future(run(i, r)) for i, r in enumerate(requests)]
        left = len(tasks)
        try:
            while left:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                left -= item.completion is not None
                yield item
        finally:
            for t in tasks:
                t.cancel()

    async def _one(self, req: ChatRequest, send: Callable[[str | None, str], Any] | None = None
                   ) -> Any:
        send = send or (lambda adapter, model: self._send(req, adapter, model))
        adapter = req.adapter if req.adapter not in (None, BASE_ADAPTER) else None
        served = self._served.get(adapter, adapter) if adapter else None
        if served is None:
            return await send(None, self.model_name)
        self._in_flight[served] = self._in_flight.get(served, 0) + 1
        try:
            return await send(adapter, served)
        finally:
            self._in_flight[served] -= 1
            if not self._in_flight[served]:
                del self._in_flight[served]

    async def _stream(self, index: int, req: ChatRequest, adapter: str | None, model: str,
                      put: Callable[[TokenDelta], None]) -> None:
        kwargs = self._kwargs(req, model)
        kwargs.update(stream=True, stream_options={"include_usage": True})
        start = time.monotonic()
        text, ids, lps, prompt = "", [], [], None
        finish, served_model = "stop", None
        async with self._sem:
            try:
                chunks = await self._create(kwargs, req.logprobs and self._logprobs_supported)
            except openai.BadRequestError as exc:
                raise self._error(exc, adapter) from None
            try:
                async for chunk in chunks:
                    served_model = chunk.model or served_model
                    extra = getattr(chunk, "model_extra", None) or {}
                    prompt = prompt or extra.get("prompt_token_ids")
                    for choice in chunk.choices:
                        piece = (choice.delta.content if choice.delta else None) or ""
                        d_lps, d_ids = self._tokens(choice)
                        finish = choice.finish_reason or finish
                        if piece or d_ids:
                            put(TokenDelta(index, d_ids, d_lps or [], text=piece,
                                           prompt_token_ids=None if text or ids else prompt))
                            text, ids, lps = text + piece, ids + d_ids, lps + (d_lps or [])
            except openai.OpenAIError as exc:
                raise self._error(exc, adapter) from None
        put(TokenDelta(index, [], [], text="", completion=Completion(
            text=text, completion_token_ids=ids,
            prompt_token_ids=[int(t) for t in prompt or []],
            logprobs=lps if len(lps) == len(ids) or not ids else None,
            finish_reason="length" if finish == "length" else "stop", adapter=adapter,
            model=served_model or self.model_name, latency_s=time.monotonic() - start)))

    def _tokens(self, choice: Any) -> tuple[list[float] | None, list[int]]:
        """A choice's (or chunk choice's) logprobs and token ids, where the server sent them."""
        logprobs: list[float] | None = None
        token_ids: list[int] = []
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        if content:
            logprobs = [float(t.logprob) for t in content]
            if self._token_ids and all(t.token.startswith("token_id:") for t in content):
                token_ids = [int(t.token.split(":", 1)[1]) for t in content]
        extra = getattr(choice, "model_extra", None) or {}
        if not token_ids and isinstance(extra.get("token_ids"), list):
            token_ids = [int(t) for t in extra["token_ids"]]
        return logprobs, token_ids

    def _kwargs(self, req: ChatRequest, model: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in req.messages],
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "top_p": req.top_p,
        }
        if req.stop:
            kwargs["stop"] = list(req.stop)
        if req.seed is not None:
            kwargs["seed"] = req.seed
        if self._token_ids:
            kwargs["extra_body"] = {"return_tokens_as_token_ids": True}
        return kwargs

    async def _send(self, req: ChatRequest, adapter: str | None, model: str) -> Completion:
        kwargs = self._kwargs(req, model)
        want_logprobs = req.logprobs and self._logprobs_supported
        start = time.monotonic()
        async with self._sem:
            try:
                resp = await self._create(kwargs, want_logprobs)
            except openai.BadRequestError as exc:
                if not (want_logprobs and "logprob" in str(exc.body or exc).lower()):
                    raise self._error(exc, adapter) from None
                self._logprobs_supported = False  # ask once, then stop asking
                resp = await self._create(kwargs, False)
        return self._completion(resp, adapter, time.monotonic() - start)

    async def _create(self, kwargs: dict[str, Any], logprobs: bool) -> Any:
        try:
            if logprobs:
                return await self._client.chat.completions.create(**kwargs, logprobs=True)
            return await self._client.chat.completions.create(**kwargs)
        except openai.BadRequestError:
            raise
        except openai.OpenAIError as exc:
            raise self._error(
                exc, kwargs["model"] if kwargs["model"] != self.model_name else None
            ) from None

    def _error(self, exc: Exception, adapter: str | None) -> InferenceError:
        if isinstance(exc, openai.APIStatusError):
            body = self._scrub(_short(exc.body if exc.body is not None else exc.message))
            msg = f"{self.base_url} answered HTTP {exc.status_code}: {body}"
            if exc.status_code == 404 and adapter:
                return AdapterError(f"adapter {adapter!r} is not loaded on the server; {msg}")
            return InferenceError(msg)
        if isinstance(exc, openai.APITimeoutError):
            return InferenceError(f"{self.base_url} did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return InferenceError(f"cannot reach {self.base_url}: {self._scrub(_short(exc))}")
        return InferenceError(self._scrub(_short(f"{type(exc).__name__}: {exc}")))

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key != "EMPTY" else text

    def _completion(self, resp: Any, adapter: str | None, latency: float) -> Completion:
        if not resp.choices:
            raise InferenceError(f"{self.base_url} returned no choices")
        choice = resp.choices[0]
        logprobs, token_ids = self._tokens(choice)
        prompt_ids = (getattr(resp, "model_extra", None) or {}).get("prompt_token_ids") or []
        return Completion(
            text=choice.message.content or "",
            completion_token_ids=token_ids,
            prompt_token_ids=[int(t) for t in prompt_ids],
            logprobs=logprobs,
            finish_reason="length" if choice.finish_reason == "length" else "stop",
            adapter=adapter,
            model=resp.model or self.model_name,
            latency_s=latency,
        )

    # --- adapters (vLLM runtime LoRA API) ------------------------------------------------
    async def load_adapter(self, name: str, path: str) -> None:
        """Load ``path`` (a path the *server* can read) as the new version of ``name``:
        requests use it as soon as this returns; the old version is unloaded once its
        requests are answered (see the module doc)."""
        validate_adapter_name(name)
        served = f"{name}-{secrets.token_hex(4)}"
        await self._post("/v1/load_lora_adapter", {"lora_name": served, "lora_path": str(path)})
        old = self._served.get(name)
        self._served[name] = served
        if old is not None:
            await self._retire(old)

    async def unload_adapter(self, name: str) -> None:
        served = self._served.pop(name, None)
        if served is None:
            raise AdapterError(f"adapter {name!r} was not loaded through this client")
        await self._retire(served)

    async def _retire(self, served: str) -> None:
        """Unload a server-side version once no request sent to it is pending."""
        deadline = time.monotonic() + self.retire_timeout
        while self._in_flight.get(served) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        try:
            await self._post("/v1/unload_lora_adapter", {"lora_name": served})
        except AdapterError as exc:  # the new version serves already; a leftover is harmless
            log.warning("could not unload the replaced adapter version: %s", exc)

    def adapters(self) -> list[str]:
        """Adapters loaded through this client."""
        return sorted(self._served)

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        try:
            resp = await self._http.post(path, json=body)
        except httpx.HTTPError as exc:
            raise AdapterError(f"cannot reach {self._http.base_url}{path}: {exc}") from None
        if resp.status_code >= 400:
            raise AdapterError(
                f"{path} for {body.get('lora_name')!r} failed: HTTP {resp.status_code}: "
                f"{self._scrub(_short(resp.text))}"
            )

    async def close(self) -> None:
        await self._client.close()
        await self._http.aclose()
