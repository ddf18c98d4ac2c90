"""What the proxy adds to a trainable call's backend request, and takes back out."""

from __future__ import annotations

import json

import pytest

from tentalis.gateway.proxy.training import (
    StreamStripper,
    ask_for_training_data,
    strip_body,
)


def test_only_what_the_client_did_not_ask_for_is_added() -> None:
    sent, ask = ask_for_training_data({"model": "m", "messages": []}, chat=True)
    assert sent["return_token_ids"] is True and sent["logprobs"] is True
    assert ask.strip_token_ids and ask.strip_logprobs
    sent, ask = ask_for_training_data({"model": "m", "logprobs": True}, chat=True)
    assert ask.added == {"return_token_ids": True}
    sent, ask = ask_for_training_data({"model": "m", "prompt": "p"}, chat=False)
    assert sent["logprobs"] == 0  # the chosen tokens' own logprobs, no alternatives
    _, ask = ask_for_training_data({"model": "m", "return_token_ids": True, "logprobs": 2},
                                   chat=False)
    assert ask.added == {}
    assert ask_for_training_data({}, chat=True)[1].refused_by(
        "Unrecognized request argument supplied: return_token_ids")


def test_a_body_loses_the_added_fields_and_keeps_the_rest() -> None:
    _, ask = ask_for_training_data({}, chat=True)
    body = {"id": "x", "prompt_token_ids": [1, 2], "choices": [
        {"index": 0, "message": {"content": "hi"}, "token_ids": [5],
         "logprobs": {"content": [{"token": "hi", "logprob": -0.1}]}}]}
    out = json.loads(strip_body(json.dumps(body).encode(), ask))
    assert out == {"id": "x", "choices": [{"index": 0, "message": {"content": "hi"},
                                           "logprobs": None}]}
    _, nothing = ask_for_training_data({"return_token_ids": True, "logprobs": True}, chat=True)
    raw = json.dumps(body).encode()
    assert strip_body(raw, nothing) is raw
    assert strip_body(b"not json", ask) == b"not json"


@pytest.mark.parametrize("cut", [1, 7, 30, 64, 10_000])
def test_a_stream_loses_them_event_by_event_however_it_is_cut(cut: int) -> None:
    _, ask = ask_for_training_data({}, chat=True)
    events = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
         "prompt_token_ids": [1, 2, 3]},
        {"choices": [{"index": 0, "delta": {"content": "Hé"}, "token_ids": [9],
                      "logprobs": {"content": [{"token": "Hé", "logprob": -1.0}]}}]},
    ]
    raw = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + \
        b": keepalive\n\ndata: [DONE]\n\n"
    strip = StreamStripper(ask)
    out = b"".join(strip.feed(raw[i : i + cut]) for i in range(0, len(raw), cut))
    out += strip.flush()
    lines = [ln for ln in out.split(b"\n") if ln.startswith(b"data:")]
    first, second = (json.loads(ln[5:]) for ln in lines[:2])
    assert "prompt_token_ids" not in first
    assert second["choices"][0] == {"index": 0, "delta": {"content": "Hé"}, "logprobs": None}
    assert lines[2] == b"data: [DONE]" and b": keepalive\n\n" in out
    assert out.endswith(b"\n\n")
