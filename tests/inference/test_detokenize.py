"""IncrementalDecoder: per-token text deltas that never split a character and add up to
the whole decode (the tiny model's byte-level BPE; SmolLM2's when it is cached)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tentalis.inference.detokenize import REPLACEMENT, IncrementalDecoder

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "héllo wörld — naïve café, 你好世界 🙂🚀 ok",
    "def add(a, b):\n    return a + b\n\n\tindented  double  spaces",
    "<step>First, add the numbers.</step>",
]


def check(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoder = IncrementalDecoder(tokenizer)
    pieces = [decoder.push(t) for t in ids]
    whole = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert "".join(pieces) == whole == text
    assert not any(REPLACEMENT in p for p in pieces)
    assert len([p for p in pieces if p]) > 1


@pytest.mark.parametrize("text", TEXTS)
def test_tiny_tokenizer(tiny_model_dir: Path, text: str) -> None:
    from transformers import AutoTokenizer

    check(AutoTokenizer.from_pretrained(tiny_model_dir), text)


def test_a_multibyte_character_waits_for_its_last_token(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("🙂", add_special_tokens=False)["input_ids"]
    assert len(ids) > 1  # the tiny vocabulary has no emoji: one token per byte
    decoder = IncrementalDecoder(tok)
    assert [decoder.push(t) for t in ids] == [""] * (len(ids) - 1) + ["🙂"]


@pytest.mark.parametrize("text", TEXTS)
def test_smollm2_tokenizer(text: str) -> None:
    from tentalis.config.paths import default_home
    from tentalis.models import SMOLLM2_ALIAS, ModelStore

    path = ModelStore(default_home()).cached_path(SMOLLM2_ALIAS)
    if path is None:
        pytest.skip("SmolLM2 is not cached here (tentalis init)")
    from transformers import AutoTokenizer

    check(AutoTokenizer.from_pretrained(path), text)
