"""One batched decode: left-padded prefill, then token by token with a KV cache.

The prompt prefix every row shares (chat template and system prompt: about 100 of the
110–130 prompt tokens of a math task for SmolLM2) is prefilled once and its keys/values
repeated for all rows (:func:`shared_prefix`); each distinct prompt then prefills the rest
once (:func:`distinct_prompts`: the G samples of a GRPO group share one prefill) and its
keys/values go to every row that asked it. The cache writes into preallocated buffers
(:mod:`tentalis.models.kv.buffer`) rather than concatenating every token.

Why not ``model.generate``: a micro-batch mixes requests with different temperatures,
top_p, seeds, max_tokens, stop strings and LoRA adapters. ``generate`` takes one sampling
configuration per call; this loop takes one per row, and drops finished rows from the
batch (and from the KV cache) once they are an eighth of it (each drop copies the cache).

Per step, for the rows still running::

    logits  (B, V)  = model(last token, cache)            # raw, untempered
    logprob (B,)    = log_softmax(logits)[chosen]         # what a trainer needs
    chosen  (B,)    = argmax(logits)                      # temperature == 0
                    | sample(top_p(softmax(logits / T)))  # otherwise, per-row generator

Output: a row with ``top_logprobs > 0`` also gets the most likely tokens at each position
(``log_softmax`` of the same raw logits, so the chosen token's entry equals its logprob).
A row with a :class:`RowSink` (a streamed request) hands its tokens out as they become
final — at once, or, when the row has stop strings, once no stop string can still cut
them — and its finished result as soon as the row ends, not when the batch does. A sink
that reports ``cancelled`` (its client went away) ends its row at the next step; the row
leaves the batch with the next drop.

Seeds: a row with ``seed`` draws from its own ``torch.Generator(seed)``, so its random
stream does not depend on the other rows. Its *distribution* may still differ in the last
float bits between batch shapes (padding changes the matmul shapes), so "same seed → same
text" is guaranteed for the same batch composition and holds almost always otherwise.
The same caveat applies to greedy decoding at near-ties (tests check batch == alone).
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from tentalis.errors import InferenceError
from tentalis.models.kv import (
    buffer_cache,
    cache_keyword,
    distinct_keys,
    left_padded,
    prefill_prefix,
    shareable_prefix,
    worth_compacting,
)


class TokenConstraint(Protocol):
    """A per-row logits processor: what may come next (a grammar, a JSON schema).

    Each step, before a token is picked, :meth:`mask` sets the logits of the tokens that
    would break the constraint to ``-inf``; the picked token is then passed to
    :meth:`accept`. The logprobs a row reports stay those of the unmasked distribution
    (what the model itself gives the token, as a trainer recomputes it)."""

    def mask(self, logits: torch.Tensor) -> None:
        """Mask one row's logits ``(V,)`` in place."""
        ...

    def accept(self, token_id: int) -> bool:
        """Advance past ``token_id``; False if the constraint did not allow it."""
        ...


@dataclass
class RowResult:
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[list[tuple[int, float]]] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "length"  # "stop" | "length" | "cancelled"


class RowSink(Protocol):
    """Where a streamed row's output goes, called on the decoding thread."""

    @property
    def cancelled(self) -> bool:
        """True once nobody reads the row any more: the loop ends it."""
        ...

    def step(self, res: RowResult, final: int) -> None:
        """``res.token_ids[:final]`` (and their logprobs) will not change any more."""
        ...

    def done(self, res: RowResult) -> None:
        """The row ended; ``res`` is complete (``text`` set)."""
        ...


@dataclass
class RowSpec:
    """How to decode one row."""

    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: Sequence[str] = ()
    adapter: str = "__base__"  # peft internal adapter name, "__base__" = no adapter
    top_logprobs: int = 0
    sink: RowSink | None = None
    constraint: TokenConstraint | None = None


def _find_stop(text: str, stops: Sequence[str]) -> int:
    """Index of the earliest stop string in ``text``, or -1."""
    hits = [i for s in stops if s and (i := text.find(s)) >= 0]
    return min(hits) if hits else -1


def _partial_stop(text: str, stops: Sequence[str]) -> int:
    """Where the longest tail of ``text`` that begins some stop string starts
    (``len(text)`` if none does): the text from there on may still become a stop."""
    start = len(text)
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:n]):
                start = min(start, len(text) - n)
                break
    return start


def _settled(tokenizer: Any, res: RowResult, stops: Sequence[str]) -> int:
    """How many of a running row's tokens no stop string can cut any more."""
    if not stops:
        return len(res.token_ids)
    text = _decode(tokenizer, res.token_ids)
    start = _partial_stop(text, stops)
    if start == len(text):
        return len(res.token_ids)
    return _cut_at_stop(tokenizer, res.token_ids, text, start)


def _cut_at_stop(tokenizer, ids: list[int], text: str, cut: int) -> int:
    """Largest k such that decode(ids[:k]) is a prefix of text[:cut] (whole tokens only)."""
    head = text[:cut]
    for k in range(len(ids) - 1, -1, -1):
        if head.startswith(_decode(tokenizer, ids[:k])):
            return k
    return 0


def _decode(tokenizer, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def _sample(
    logits: torch.Tensor, temps: torch.Tensor, top_ps: torch.Tensor, gens: list[torch.Generator]
) -> torch.Tensor:
    """Sample one token per row of ``logits`` (R, V) with per-row T, top_p and generator.

    Inverse-CDF sampling: each row draws one uniform ``u ∈ (0, 1]`` from its own generator
    and takes the first token whose cumulative probability reaches ``u · total``. Same
    distribution as ``torch.multinomial``, but one batched cumsum + searchsorted instead of
    a vocabulary-sized random draw per row, which is a noticeable share of a CPU decode
    step on a large vocabulary (docs/measurements.md, "Sampling one token")."""
    probs = torch.softmax(logits.float() / temps[:, None], dim=-1)
    order = None
    if bool((top_ps < 1.0).any()):
        probs, order = probs.sort(dim=-1, descending=True)
        # drop a token when the mass strictly before it already reaches top_p
        drop = (probs.cumsum(-1) - probs) >= top_ps[:, None]
        probs = probs.masked_fill(drop, 0.0)
    u = 1.0 - torch.cat([torch.rand(1, generator=g, device=probs.device) for g in gens])
    cdf = probs.cumsum(-1)  # (R, V)
    picks = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None]).clamp(max=probs.shape[-1] - 1)
    return (order.gather(1, picks) if order is not None else picks)[:, 0]


class AdapterRouting:
    """Select a LoRA adapter per batch row on every LoRA layer of a model.

    This is what peft does inside ``PeftModel.generate(adapter_names=...)`` (a forward
    pre-hook that passes ``adapter_names`` to each LoRA layer), done on the plain model so
    that *every* row is routed explicitly: ``"__base__"`` rows skip all adapters, even
    ones injected by someone else (a trainer sharing the model) and whatever adapter peft
    considers "active". ``names`` may be reassigned between forward passes.
    """

    def __init__(self, model: Any, names: list[str]) -> None:
        self.names = names
        self._handles: list[Any] = []
        self._disabled: list[tuple[Any, bool]] = []  # (layer, its previous flag)
        if "peft" not in sys.modules:  # no peft imported → no LoRA layers anywhere
            return
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        all_base = all(n == "__base__" for n in names)
        for module in model.modules():
            if all_base and isinstance(module, LoraLayer):
                # every row is base: switch the layers off rather than route each row (the
                # routed path still pays peft's per-row bookkeeping on every layer)
                self._disabled.append((module, module._disable_adapters))
                module._disable_adapters = True
            elif isinstance(module, LoraLayer | AuxiliaryTrainingWrapper):
                self._handles.append(module.register_forward_pre_hook(self._hook, with_kwargs=True))

    def _hook(self, _module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        kwargs["adapter_names"] = self.names
        return args, kwargs

    def __enter__(self) -> AdapterRouting:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for module, flag in self._disabled:
            module._disable_adapters = flag
        self._disabled.clear()


def shared_prefix(rows: Sequence[RowSpec]) -> int:
    """How many leading prompt tokens to prefill once for the whole batch: the prefix all
    rows share (chat template and system prompt, :func:`~tentalis.models.kv.shareable_prefix`),
    when every row uses the same adapter (the prefix's keys/values depend on it). At least
    one prompt token of every row is left to run (its logits pick the first token)."""
    if len({r.adapter for r in rows}) != 1:
        return 0
    return shareable_prefix([r.prompt_ids for r in rows])


def distinct_prompts(rows: Sequence[RowSpec]) -> tuple[list[int], list[int]]:
    """Rows that share a prompt and an adapter (the G samples of one GRPO group) need
    one prefill between them: ``(first row of each distinct prompt, for every row the
    index of its prompt among those)``."""
    return distinct_keys([(r.adapter, tuple(r.prompt_ids)) for r in rows])


def _finished(tokenizer: Any, res: RowResult, spec: RowSpec, tok: int, eos_ids: set[int]) -> bool:
    """Whether the row ends with ``tok`` (just appended to ``res``): end of sequence, a
    stop string (the tokens from the one that completes it are removed) or the cap."""
    if spec.constraint is not None and not spec.constraint.accept(tok):
        res.finish_reason = "stop"  # cannot happen under the mask; never run past it
        return True
    if tok in eos_ids:
        res.finish_reason = "stop"
        return True
    if spec.stop:
        text = _decode(tokenizer, res.token_ids)
        cut = _find_stop(text, spec.stop)
        if cut >= 0:
            k = _cut_at_stop(tokenizer, res.token_ids, text, cut)
            del res.token_ids[k:], res.logprobs[k:], res.top_logprobs[k:]
            res.finish_reason = "stop"
            return True
    if len(res.token_ids) >= spec.max_new_tokens:
        res.finish_reason = "length"
        return True
    return False


def _mask_constrained(logits: torch.Tensor, specs: Sequence[RowSpec],
                      running: Sequence[bool]) -> None:
    """Apply each running constrained row's mask to its row of ``logits`` (B, V)."""
    for j, spec in enumerate(specs):
        if spec.constraint is not None and running[j]:
            spec.constraint.mask(logits[j])


def decode_batch(
    model: Any,
    tokenizer: Any,
    rows: Sequence[RowSpec],
    *,
    eos_ids: set[int],
    pad_id: int,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[RowResult]:
    """Generate for every row; results in row order. ``model`` is the plain transformers
    model (LoRA layers, if any, injected into it); ``RowSpec.adapter`` picks each row's.
    ``should_stop`` is polled every token: when it turns true (the client is closing) the
    batch is abandoned with InferenceError instead of holding the process open.
    ``on_step(rows)`` is called after every decode step with the rows still running."""
    with AdapterRouting(model, [r.adapter for r in rows]) as routing, torch.inference_mode():
        return _generate(model, tokenizer, rows, routing, eos_ids, pad_id,
                         should_stop or (lambda: False), on_step)


def _end_row(tokenizer: Any, res: RowResult, spec: RowSpec, eos_ids: set[int]) -> None:
    """Set the text of a finished row and hand the row to its sink."""
    ended_by_eos = bool(res.token_ids) and res.token_ids[-1] in eos_ids
    res.text = _decode(tokenizer, res.token_ids[:-1] if ended_by_eos else res.token_ids)
    if spec.sink is not None:
        spec.sink.done(res)


def _generate(
    model: Any,
    tokenizer: Any,
    rows: Sequence[RowSpec],
    routing: AdapterRouting,
    eos_ids: set[int],
    pad_id: int,
    should_stop: Callable[[], bool],
    on_step: Callable[[int], None] | None,
) -> list[RowResult]:
    device = next(model.parameters()).device
    n = len(rows)
    share = shared_prefix(rows)
    uniq, expand = distinct_prompts(rows)
    # left padding: every prompt ends at the same column, (U, width)
    ids, attn, pos = left_padded([rows[u].prompt_ids[share:] for u in uniq], pad_id, share, device)
    width = ids.shape[1]

    gens = []
    for r in rows:
        g = torch.Generator(device=device)
        g.manual_seed(r.seed if r.seed is not None else secrets.randbits(63))
        gens.append(g)
    temps = torch.tensor([max(r.temperature, 1e-6) for r in rows], device=device)
    top_ps = torch.tensor([r.top_p for r in rows], device=device)
    greedy = torch.tensor([r.temperature <= 0 for r in rows], device=device)
    top_k = max(r.top_logprobs for r in rows)

    results = [RowResult() for _ in rows]
    cache = buffer_cache(model.config, share + width + max(r.max_new_tokens for r in rows))
    cache_kw = cache_keyword(model)
    names = routing.names
    if share:  # the common prefix once, its keys/values repeated for every prompt
        routing.names = names[:1]
        prefix = torch.tensor([rows[0].prompt_ids[:share]], device=device)
        prefill_prefix(model, cache, prefix, len(uniq), logits_to_keep=1)
        attn = torch.cat([attn.new_ones((len(uniq), share)), attn], dim=1)
    routing.names = [names[u] for u in uniq]
    out = model(
        input_ids=ids,
        attention_mask=attn,
        position_ids=pos,
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    )
    logits = out.logits[:, -1, :]
    routing.names = names
    if len(uniq) < n:  # each distinct prompt ran once: its cache and logits go to its rows
        sel = torch.tensor(expand, device=device)
        cache.batch_select_indices(sel)
        attn, pos, logits = attn[sel], pos[sel], logits[sel]
    live = list(range(n))  # batch row j ↔ request live[j]
    running = [True] * n  # per batch row: False once its request has finished
    while True:
        if should_stop():
            raise InferenceError("inference client closed while generating")
        logits = logits.float()  # (B, V)
        logp = torch.log_softmax(logits, dim=-1)
        _mask_constrained(logits, [rows[i] for i in live], running)
        live_t = torch.tensor(live, device=device)
        chosen = logits.argmax(-1)
        # rows that finished but wait in the batch for the next drop draw nothing
        busy = torch.tensor(running, device=device)
        sampled = (~greedy[live_t] & busy).nonzero()[:, 0]
        if len(sampled):
            idx = live_t[sampled]
            chosen[sampled] = _sample(
                logits[sampled], temps[idx], top_ps[idx], [gens[i] for i in idx.tolist()]
            )
        chosen_lp = logp.gather(1, chosen[:, None])[:, 0]
        tops: list[list[tuple[int, float]]] = []
        if top_k:
            top_lp, top_ids = logp.topk(top_k, dim=-1)  # (B, k), most likely first
            tops = [list(zip(i, lp, strict=True))
                    for i, lp in zip(top_ids.tolist(), top_lp.tolist(), strict=True)]

        for j, (tok, lp) in enumerate(zip(chosen.tolist(), chosen_lp.tolist(), strict=True)):
            if not running[j]:
                continue
            res, spec = results[live[j]], rows[live[j]]
            if spec.sink is not None and spec.sink.cancelled:
                res.finish_reason, running[j] = "cancelled", False
                _end_row(tokenizer, res, spec, eos_ids)
                continue
            res.token_ids.append(tok)
            res.logprobs.append(lp)
            if spec.top_logprobs:
                res.top_logprobs.append(tops[j][: spec.top_logprobs])
            running[j] = not _finished(tokenizer, res, spec, tok, eos_ids)
            if not running[j]:
                _end_row(tokenizer, res, spec, eos_ids)
            elif spec.sink is not None:
                spec.sink.step(res, _settled(tokenizer, res, spec.stop))
        keep = [j for j in range(len(live)) if running[j]]
        if on_step is not None:
            on_step(len(keep))
        if not keep:
            break
        if worth_compacting(len(live) - len(keep), len(live)):
            sel = torch.tensor(keep, device=device)
            cache.batch_select_indices(sel)
            attn, pos, chosen = attn[sel], pos[sel], chosen[sel]
            live = [live[j] for j in keep]
            running = [True] * len(live)
            routing.names = [routing.names[j] for j in keep]
        attn = torch.cat([attn, attn.new_ones((len(live), 1))], dim=1)
        pos = pos[:, -1:] + 1
        out = model(
            input_ids=chosen[:, None],
            attention_mask=attn,
            position_ids=pos,
            use_cache=True,
            **{cache_kw: cache},
        )
        logits = out.logits[:, -1, :]
    return results
