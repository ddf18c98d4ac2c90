"""``IncrementalDecoder``: the text of a growing token sequence, one delta per token.

Decoding each token alone is wrong twice over: a character whose UTF-8 bytes span two
byte-level tokens decodes to U+FFFD halves, and SentencePiece tokenizers drop the leading
space of a sequence's first token. So each step decodes a short window — the tokens since
the last emitted delta, plus the one before them as context — and emits the part past the
context once it no longer ends in an incomplete character (the method of Hugging Face's
text-generation-inference and vLLM). The deltas concatenate to ``decode(ids)`` with the
same flags the engine uses for ``Completion.text``.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


class IncrementalDecoder:
    """Feed token ids one by one; each :meth:`push` returns the text they added."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self._prefix = 0  # window start: context kept for the next decode
        self._read = 0  # tokens whose text has been emitted

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=False,
                                         clean_up_tokenization_spaces=False))

    def push(self, token_id: int) -> str:
        """Add one token; the new text ("" while a character is still incomplete)."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix:self._read])
        after = self._decode(self.ids[self._prefix:])
        if len(after) > len(before) and not after.endswith(REPLACEMENT) \
                and after.startswith(before):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before):]
        return ""
