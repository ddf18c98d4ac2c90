from __future__ import annotations

import asyncio
import time

import pytest

from tentalis.errors import InferenceError
from tentalis.inference.base import ChatRequest
from tentalis.inference.local import LocalInference


async def test_close_abandons_a_long_generation_promptly(tiny_model_dir) -> None:
    inf = LocalInference(tiny_model_dir, max_batch=2)
    req = ChatRequest(messages=[{"role": "user", "content": "go"}], max_tokens=1900,
                      temperature=0.0)  # greedy: runs to max_tokens
    pending = asyncio.ensure_future(inf.chat([req]))
    await asyncio.sleep(0.5)
    assert not pending.done()  # still generating its 1900 tokens
    t0 = time.perf_counter()
    await inf.close()
    with pytest.raises(InferenceError, match="closed"):
        await asyncio.wait_for(pending, 10)
    assert time.perf_counter() - t0 < 5
