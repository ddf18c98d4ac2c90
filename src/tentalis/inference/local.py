"""``LocalInference``: a transformers model + peft LoRA adapters, served in-process.

Concurrent ``chat`` calls are grouped by a :class:`MicroBatcher` into batches of up to
``max_batch`` requests and decoded on one worker thread (torch never blocks the event
loop). A batch may mix adapters: peft's mixed-batch LoRA (``adapter_names``, routed by
:class:`~tentalis.inference.decoding.AdapterRouting`) applies each row's adapter, or none
for the base model, in the same forward pass, instead of one batch per adapter
(docs/measurements.md, "Mixed-adapter batches").

Adapters change only on the worker thread between batches, so requests in flight finish on
the version they started with and the next batch uses the new one; the base model is never
reloaded. ``load_adapter(name, path)`` copies the new weights into the loaded adapter when
the LoRA shape is unchanged (the usual case: a new training step), else loads them under a
fresh internal name, repoints ``name`` to it, and deletes the old weights.

Streaming (:meth:`LocalInference.stream`): a streamed request rides in a batch like any
other; its tokens leave the worker thread as each decode step makes them final
(:mod:`tentalis.inference.streaming`), and closing the stream ends its row.

Completions: ``completion_token_ids`` are the generated tokens, ending with the EOS token
when the model stopped by itself (a trainer needs that decision), never padding;
``text`` decodes them without that EOS. On a stop string the completion ends at the last
whole token before it, so ``text == decode(completion_token_ids)`` always holds (minus the
EOS). ``logprobs[i]`` is log_softmax of the raw (untempered) logits at token i.

Errors: a request naming an unknown adapter fails with :class:`AdapterError`. It is checked
when ``chat`` is called (nothing queued) and again when its batch forms (the adapter may
have been unloaded meanwhile); either way only that ``chat`` call fails — other callers'
requests in the same batch are answered.

Sharing the model in-process (the trainer): :attr:`base_model` is the transformers model
that serves every request; a trainer may wrap it with ``peft.get_peft_model`` to add its
own adapter. Base requests stay base (every row is routed explicitly), and unloading our
adapters never removes the trainer's. The trainer must hold :attr:`model_lock` (or use
:meth:`run_in_worker`) while it trains, and call ``set_adapter`` on its own model before
each step: loading or unloading adapters here may change peft's "active" adapter.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from tentalis.errors import AdapterError, InferenceError, ModelStoreError
from tentalis.inference.adapters import validate_adapter_name
from tentalis.inference.base import (
    BASE_ADAPTER,
    MAX_TOP_LOGPROBS,
    ChatRequest,
    Completion,
    TokenDelta,
)
from tentalis.inference.batcher import MicroBatcher
from tentalis.inference.decoding import RowResult, RowSpec, decode_batch
from tentalis.inference.grammar import Grammars
from tentalis.inference.merging import MergedWeights
from tentalis.inference.streaming import Job, read_stream
from tentalis.inference.tool_prompt import render_prompt
from tentalis.models.precision import resolve_dtype
from tentalis.models.tiny import CHATML_TEMPLATE

R = TypeVar("R")

PEFT_BASE = "__base__"


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class LocalInference:
    """Serve one local Hugging Face model directory with LoRA adapters selected per request.

    ``window_s`` is how long the batcher waits for more requests after the first one.
    ``num_threads`` sets torch's intra-op threads (process-wide). On a small shared CPU, 1
    can beat the default: with 2 threads and the second core busy, every op waits for the
    descheduled thread (docs/measurements.md, "Threads on a loaded CPU").
    ``model_lock`` is held while a batch runs or adapters change; code that shares the
    model in-process (the trainer) holds it too, or uses :meth:`run_in_worker`.
    ``merge_adapters``: with float32 weights, a batch whose rows all use one adapter runs
    on merged weights (:mod:`tentalis.inference.merging`; the base weights are restored
    after the batch). Not for bf16/fp16 weights: rounding ``W + ΔW`` to 8 mantissa bits
    loses part of a small LoRA delta (seen on SmolLM2: merged and routed greedy answers of a
    trained adapter diverged within a few tokens), so those batches stay routed.
    Requests may carry ``tools`` (rendered by :func:`~tentalis.inference.tool_prompt.render_prompt`)
    and a ``constraint`` (decoded under its grammar, :mod:`tentalis.inference.grammar`).
    """

    supports_structured_output = True

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: torch.dtype | str = "auto",
        max_batch: int = 8,
        model_name: str | None = None,
        window_s: float = 0.005,
        num_threads: int | None = None,
        merge_adapters: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if num_threads:
            torch.set_num_threads(num_threads)  # process-wide, like every torch setting

        model_dir = Path(model_dir)
        self.model_name = model_name or model_dir.name
        self.device = _pick_device(device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = AutoModelForCausalLM.from_pretrained(
                model_dir, dtype=resolve_dtype(dtype, self.device)
            )
        except (OSError, ValueError) as exc:
            raise ModelStoreError(f"cannot load a model from {model_dir}: {exc}") from exc
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if not tokenizer.chat_template:
            tokenizer.chat_template = CHATML_TEMPLATE
        self._tokenizer = tokenizer
        self._base = model.to(self.device).eval()
        self._peft: Any = None  # peft.PeftModel, created on the first load_adapter
        self._adapters: dict[str, str] = {}  # public name -> peft internal name
        self._serial = itertools.count(1)
        self._eos_ids = self._collect_eos_ids()
        self._pad_id = int(tokenizer.pad_token_id)
        self._max_positions = int(getattr(model.config, "max_position_embeddings", 1 << 30))
        self._grammars = Grammars(tokenizer, int(model.config.vocab_size), self._eos_ids)
        self.model_lock = threading.RLock()
        self.merge_adapters = merge_adapters
        self._merged = MergedWeights()
        self.generated_tokens = 0
        self.cancelled_rows = 0  # streamed rows ended early because their reader left
        #: called on the worker thread after every decode step with the rows still running
        #: (a test and measurement hook)
        self.step_hook: Callable[[int], None] | None = None
        self._batcher: MicroBatcher[Job, Completion] = MicroBatcher(
            self._run_batch, max_batch=max_batch, window_s=window_s
        )

    # --- what the trainer shares --------------------------------------------------------
    @property
    def model(self) -> Any:
        """Our ``PeftModel`` (holds the loaded adapters) once one is loaded, else the base."""
        return self._peft if self._peft is not None else self._base

    @property
    def base_model(self) -> Any:
        """The transformers model that serves every request (LoRA layers injected into it)."""
        return self._base

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def batches(self) -> int:
        """Generation batches run so far (requests / batches = mean batch size)."""
        return self._batcher.batches

    @property
    def requests_served(self) -> int:
        return self._batcher.items

    async def run_in_worker(self, fn: Callable[[], R]) -> R:
        """Run ``fn()`` on the generation thread between batches (exclusive model access)."""
        return await self._batcher.call(fn)

    # --- InferenceClient --------------------------------------------------------------
    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer every request (the i-th completion answers the i-th request)."""
        self._check(requests)
        if not requests:
            return []
        return await self._submit([Job(r) for r in requests])

    def stream(self, requests: Sequence[ChatRequest]) -> AsyncIterator[TokenDelta]:
        """Every request's tokens as they are decoded (:class:`StreamingInference`).
        Invalid requests raise here, before anything is queued; a schema the grammar
        compiler refuses, when the iteration starts."""
        self._check(requests)
        return read_stream(list(requests), self._submit)

    async def _submit(self, jobs: list[Job]) -> list[Completion]:
        for c in {j.request.constraint for j in jobs if j.request.constraint is not None}:
            await asyncio.to_thread(self._grammars.compile, c)  # refuse a bad schema now
        return await self._batcher.submit(jobs)

    def _check(self, requests: Sequence[ChatRequest]) -> None:
        for r in requests:
            self._internal_name(r.adapter)  # fail fast, before anything is queued
            if r.max_tokens < 1:
                raise InferenceError(f"max_tokens must be >= 1, got {r.max_tokens}")
            if r.temperature < 0 or not 0 < r.top_p <= 1:
                raise InferenceError(
                    f"need temperature >= 0 and 0 < top_p <= 1, got {r.temperature}, {r.top_p}"
                )
            if not 0 <= r.top_logprobs <= MAX_TOP_LOGPROBS:
                raise InferenceError(
                    f"top_logprobs must be in 0..{MAX_TOP_LOGPROBS}, got {r.top_logprobs}")

    async def load_adapter(self, name: str, path: str | Path) -> None:
        """Load or replace LoRA adapter ``name`` from a peft directory, between batches."""
        _check_adapter_name(name)
        if not (Path(path) / "adapter_config.json").is_file():
            raise AdapterError(f"{path} is not a peft adapter directory (no adapter_config.json)")
        await self._batcher.call(lambda: self._load_adapter(name, Path(path)))

    async def unload_adapter(self, name: str) -> None:
        await self._batcher.call(lambda: self._unload_adapter(name))

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    async def close(self) -> None:
        """Stop the worker thread after the current batch; queued requests fail."""
        await asyncio.to_thread(self._batcher.close)

    # --- worker thread ------------------------------------------------------------------
    def _collect_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        gen_eos = getattr(self._base.generation_config, "eos_token_id", None)
        for value in (gen_eos, self._tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(int(v) for v in value)
        return ids

    def _internal_name(self, adapter: str | None) -> str:
        if adapter is None or adapter == BASE_ADAPTER:
            return PEFT_BASE
        internal = self._adapters.get(adapter)
        if internal is None:
            loaded = ", ".join(self.adapters()) or "none"
            raise AdapterError(f"unknown adapter {adapter!r} (loaded: {loaded})")
        return internal

    def _encode(self, request: ChatRequest) -> list[int]:
        text = render_prompt(self._tokenizer, request.messages, request.tools)
        return list(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _run_batch(
        self, jobs: list[Job], submitted: list[float]
    ) -> list[Completion | BaseException]:
        out: list[Completion | BaseException] = [InferenceError("not run")] * len(jobs)
        rows: list[RowSpec] = []
        index: list[int] = []
        for i, job in enumerate(jobs):
            r = job.request
            try:
                prompt = self._encode(r)
                room = self._max_positions - len(prompt)
                if room < 1:
                    raise InferenceError(
                        f"prompt of {len(prompt)} tokens leaves no room in the "
                        f"{self._max_positions}-token context"
                    )
                rows.append(
                    RowSpec(
                        prompt_ids=prompt,
                        max_new_tokens=min(r.max_tokens, room),
                        temperature=r.temperature,
                        top_p=r.top_p,
                        seed=r.seed,
                        stop=tuple(r.stop),
                        adapter=self._internal_name(r.adapter),
                        top_logprobs=r.top_logprobs,
                        sink=job.sink,
                        constraint=None if r.constraint is None
                        else self._grammars.row(r.constraint),
                    )
                )
                index.append(i)
                if job.sink is not None:
                    job.sink.prompt_ids = prompt
                    job.sink.complete = (lambda res, r=r, p=prompt, t=submitted[i]:
                                         self._completion(r, p, res, t))
            except Exception as exc:
                out[i] = (
                    exc
                    if isinstance(exc, InferenceError)
                    else InferenceError(f"cannot build the prompt: {type(exc).__name__}: {exc}")
                )
        if not rows:
            return out
        with self.model_lock:
            if self._base.training:  # a trainer sharing the model left it in train mode
                self._base.eval()
            merged = self._mergeable(rows)
            if merged is not None:  # one adapter for every row: serve merged weights
                rows = [replace(r, adapter=PEFT_BASE) for r in rows]
            with self._merged.applied(self._base, merged) if merged else nullcontext():
                results = decode_batch(
                    self._base, self._tokenizer, rows, eos_ids=self._eos_ids,
                    pad_id=self._pad_id, should_stop=lambda: self._batcher.closed,
                    on_step=self.step_hook,
                )
        for i, row, res in zip(index, rows, results, strict=True):
            self.generated_tokens += len(res.token_ids)
            self.cancelled_rows += res.finish_reason == "cancelled"
            sink = jobs[i].sink
            out[i] = sink.completion if sink is not None and sink.completion else \
                self._completion(jobs[i].request, row.prompt_ids, res, submitted[i])
        return out

    def _completion(self, r: ChatRequest, prompt_ids: list[int], res: RowResult,
                    submitted: float) -> Completion:
        return Completion(
            text=res.text,
            completion_token_ids=res.token_ids,
            prompt_token_ids=prompt_ids,
            logprobs=res.logprobs if r.logprobs else None,
            top_logprobs=res.top_logprobs if r.top_logprobs else None,
            finish_reason=res.finish_reason,
            adapter=r.adapter if r.adapter not in (None, BASE_ADAPTER) else None,
            model=self.model_name,
            latency_s=time.monotonic() - submitted,
        )

    def _load_adapter(self, name: str, path: Path) -> None:
        from peft import PeftModel

        internal = f"tentalis_{next(self._serial)}"
        with self.model_lock:
            current = self._adapters.get(name)
            if current is not None:
                self._merged.invalidate(current)  # its weights are about to change
            if current is not None and self._load_in_place(current, path):
                return
            try:
                with warnings.catch_warnings():  # peft probes a property transformers 5 deprecated
                    warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
                    if self._peft is None:
                        self._peft = PeftModel.from_pretrained(
                            self._base, str(path), adapter_name=internal, is_trainable=False
                        )
                        self._peft.eval()
                    else:
                        self._peft.load_adapter(
                            str(path), adapter_name=internal, is_trainable=False
                        )
            except Exception as exc:
                if self._peft is not None and internal in self._peft.peft_config:
                    self._drop(internal)  # do not leave a half-loaded adapter behind
                raise AdapterError(f"cannot load adapter {name!r} from {path}: {exc}") from exc
            old = self._adapters.get(name)
            self._adapters[name] = internal  # the next batch sees the new version
            if old is not None:
                self._drop(old)

    def _mergeable(self, rows: Sequence[RowSpec]) -> str | None:
        """The adapter every row uses, when merged serving applies to it (see merging.py)."""
        names = {r.adapter for r in rows}
        if not self.merge_adapters or len(names) != 1 or self._base.dtype != torch.float32:
            return None
        (name,) = names
        if name == PEFT_BASE or self._peft is None:
            return None
        if name != self._merged.adapter and not MergedWeights.can_merge(self._base, name):
            return None
        return name

    def _load_in_place(self, internal: str, path: Path) -> bool:
        """Copy new weights into a loaded adapter of the same shape: no module surgery, so
        much faster than a fresh load (docs/measurements.md, "Adapter reload").
        False, touching nothing, if the config or tensor shapes differ."""
        from peft import PeftConfig
        from peft.utils import (
            get_peft_model_state_dict,
            load_peft_weights,
            set_peft_model_state_dict,
        )

        try:
            new_config = PeftConfig.from_pretrained(str(path))
            if _config_key(new_config) != _config_key(self._peft.peft_config[internal]):
                return False
            weights = load_peft_weights(str(path), device=str(self.device))
        except Exception as exc:
            raise AdapterError(f"cannot read adapter from {path}: {exc}") from exc
        current = get_peft_model_state_dict(self._peft, adapter_name=internal)
        if weights.keys() != current.keys() or any(
            weights[k].shape != current[k].shape for k in weights
        ):
            return False
        set_peft_model_state_dict(self._peft, weights, adapter_name=internal)
        return True

    def _unload_adapter(self, name: str) -> None:
        with self.model_lock:
            internal = self._adapters.pop(name, None)
            if internal is None:
                raise AdapterError(f"unknown adapter {name!r} (loaded: {self.adapters()})")
            self._drop(internal)

    def _drop(self, internal: str) -> None:
        """Delete peft adapter ``internal``; unwrap the base model when none is left."""
        from peft.tuners.lora import LoraLayer

        self._merged.invalidate(internal)
        peft = self._peft
        others = [a for a in peft.peft_config if a != internal]
        in_layers = set().union(
            *(m.lora_A.keys() for m in self._base.modules() if isinstance(m, LoraLayer))
        )
        if not others and in_layers <= {internal}:  # nobody else's adapter lives here
            self._base = peft.unload()  # removes the LoRA layers; same module object
            self._peft = None
            return
        if internal in peft.active_adapters:
            # Choose the next active adapter ourselves, among our own frozen ones: peft's
            # default would warn and mark whichever it picks as trainable.
            ours = [a for a in self._adapters.values() if a in others]
            if ours:
                peft.set_adapter(ours[-1], inference_mode=True)
        peft.delete_adapter(internal)


_CONFIG_NOISE = {
    "base_model_name_or_path",
    "revision",
    "inference_mode",
    "peft_version",
    "init_lora_weights",
    "lora_dropout",
}


def _config_key(config: Any) -> str:
    """A peft config without the fields that do not change how the weights are applied."""
    import json

    data = {k: v for k, v in config.to_dict().items() if k not in _CONFIG_NOISE}
    return json.dumps(
        data, sort_keys=True, default=lambda v: sorted(v) if isinstance(v, set) else str(v)
    )


def _check_adapter_name(name: str) -> None:
    validate_adapter_name(name)
    if name == BASE_ADAPTER:
        raise AdapterError(f"{BASE_ADAPTER!r} names the base model; pick another adapter name")
