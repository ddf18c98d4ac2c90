"""Constrained decoding with xgrammar: :class:`OutputConstraint` → a per-row token mask.

xgrammar (``pip install xgrammar``, CPU wheels) compiles a JSON Schema against the
tokenizer's vocabulary once; a :class:`GrammarRow` then walks that grammar as the row
decodes. Before each token it fills xgrammar's bitmask of the tokens that keep the output
valid and sets every other logit to ``-inf``; once the JSON (and the constraint's suffix)
is complete only the end-of-sequence tokens remain, so a constrained row stops there.

JSON is decoded compact (no free whitespace between tokens: a weak model could otherwise
spend its whole budget on spaces) and strict (no properties beyond the schema's). A
schema xgrammar cannot compile is refused when the request arrives (InferenceError), not
in the middle of a batch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import Any

import torch

from tentalis.errors import InferenceError
from tentalis.inference.base import OutputConstraint

ANY_OBJECT = '{"type": "object"}'


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as exc:  # a dependency, but say what to do if it is missing
        raise InferenceError(
            "constrained decoding needs xgrammar: pip install 'xgrammar>=0.2'") from exc
    return xgrammar


class GrammarRow:
    """One row's walk through a compiled grammar (a :class:`TokenConstraint`)."""

    def __init__(self, compiled: Any, vocab_size: int) -> None:
        xgr = _xgrammar()
        self._matcher = xgr.GrammarMatcher(compiled)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)

    def mask(self, logits: torch.Tensor) -> None:
        self._matcher.fill_next_token_bitmask(self._bitmask, 0)
        allowed = _unpack(self._bitmask[0], logits.shape[-1]).to(logits.device)
        logits.masked_fill_(~allowed, float("-inf"))

    def accept(self, token_id: int) -> bool:
        return bool(self._matcher.accept_token(token_id))


_BITS = torch.arange(32, dtype=torch.int32)


def _unpack(words: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """xgrammar's packed int32 bitmask (bit ``i % 32`` of word ``i // 32`` set = token i
    allowed) → a bool vector of ``vocab_size``."""
    bits = (words[:, None] >> _BITS) & 1  # (W, 32)
    return bits.reshape(-1)[:vocab_size].bool()


class Grammars:
    """Compiles constraints for one tokenizer (cached by constraint) and starts rows."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: Iterable[int]) -> None:
        self.vocab_size = vocab_size
        self._tokenizer = tokenizer
        self._stop_ids = sorted(stop_ids)
        self._compiler: Any = None
        self._cache: dict[OutputConstraint, Any] = {}
        self._lock = threading.Lock()

    def _get_compiler(self) -> Any:
        if self._compiler is None:
            xgr = _xgrammar()
            info = xgr.TokenizerInfo.from_huggingface(
                self._tokenizer, vocab_size=self.vocab_size, stop_token_ids=self._stop_ids)
            self._compiler = xgr.GrammarCompiler(info, max_threads=1)
        return self._compiler

    def compile(self, constraint: OutputConstraint) -> Any:
        """The compiled grammar of ``constraint``; InferenceError when it cannot be."""
        with self._lock:
            hit = self._cache.get(constraint)
            if hit is not None:
                return hit
            compiler = self._get_compiler()
            try:
                compiled = compiler.compile_grammar(_grammar(constraint))
            except InferenceError:
                raise
            except Exception as exc:  # xgrammar raises RuntimeError/ValueError on bad input
                raise InferenceError(f"cannot enforce this JSON schema: {exc}") from exc
            if len(self._cache) >= 256:
                self._cache.pop(next(iter(self._cache)))
            self._cache[constraint] = compiled
            return compiled

    def row(self, constraint: OutputConstraint) -> GrammarRow:
        return GrammarRow(self.compile(constraint), self.vocab_size)


def _grammar(constraint: OutputConstraint) -> Any:
    xgr = _xgrammar()
    schema = constraint.json_schema or ANY_OBJECT
    try:
        json.loads(schema)
    except json.JSONDecodeError as exc:
        raise InferenceError(f"the JSON schema is not JSON: {exc}") from exc
    body = xgr.Grammar.from_json_schema(schema, any_whitespace=False, strict_mode=True)
    parts = [body]
    if constraint.prefix:
        parts.insert(0, xgr.Grammar.from_ebnf(f"root ::= {json.dumps(constraint.prefix)}"))
    if constraint.suffix:
        parts.append(xgr.Grammar.from_ebnf(f"root ::= {json.dumps(constraint.suffix)}"))
    return parts[0] if len(parts) == 1 else xgr.Grammar.concat(*parts)
