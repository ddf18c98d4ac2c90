"""A tour of the gateway against a running ``tentalis serve``.

1. The official ``openai`` client, pointed at the intercept proxy, holds a 3-turn
   conversation (the second turn streamed) under one ``X-Session-Id``.
2. The session is read back over the bridge: each turn as recorded in the experience
   store, the first two linked to the message that followed them (their next state).
3. A call without ``X-Session-Id``: the proxy names the session it placed the call in
   (its answer's ``X-Session-Id``), and ``GET /v1/sessions`` lists it.
4. A task is submitted over the bridge and polled until its steps, scores and the
   manager's feedback are there.

    tentalis serve &                       # model server, proxy, bridge, workers …
    python examples/gateway_tour.py [--key KEY]

``--key`` (or TENTALIS_API_KEY) is needed when the gateway has API keys configured.
Ports come from the tentalis configuration (INTERCEPT_PORT, BRIDGE_PORT).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from typing import Any

import httpx
from openai import OpenAI

from tentalis.config import load_settings

QUESTIONS = [
    "Tom has 3 apples and buys 4 more. How many apples does he have?",
    "Now he gives 2 away. How many are left?",
    "Thanks! Say it in one word.",
]


def converse(proxy: str, key: str, session: str) -> None:
    client = OpenAI(base_url=f"{proxy}/v1", api_key=key or "no-key",
                    default_headers={"X-Session-Id": session})
    messages: list[dict[str, Any]] = []
    for turn, question in enumerate(QUESTIONS):
        messages.append({"role": "user", "content": question})
        if turn == 1:
            stream = client.chat.completions.create(model="base", messages=messages,
                                                    max_tokens=48, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        else:
            reply = client.chat.completions.create(model="base", messages=messages,
                                                   max_tokens=48)
            text = reply.choices[0].message.content or ""
        print(f"turn {turn}: {question!r} → {text.strip()[:80]!r}")
        messages.append({"role": "assistant", "content": text})


def unnamed(proxy: str, key: str) -> str:
    """One call without X-Session-Id; the session the proxy placed it in."""
    client = OpenAI(base_url=f"{proxy}/v1", api_key=key or "no-key")
    raw = client.chat.completions.with_raw_response.create(
        model="base", messages=[{"role": "user", "content": f"Name a prime ({uuid.uuid4()})."}],
        max_tokens=16)
    return raw.headers["x-session-id"]


def poll(client: httpx.Client, url: str, done: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(url)
        if r.status_code == 200:
            body = r.json()
            if done(body):
                return body
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {url}: last answer {body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--key", default=os.environ.get("TENTALIS_API_KEY", ""))
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    settings = load_settings()
    proxy = f"http://127.0.0.1:{settings.gateway.intercept_port}"
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    bridge = httpx.Client(base_url=f"http://127.0.0.1:{settings.gateway.bridge_port}",
                          headers=headers, timeout=30)

    session = f"tour-{uuid.uuid4().hex[:8]}"
    converse(proxy, args.key, session)
    view = poll(bridge, f"/v1/sessions/{session}",
                lambda b: len(b["turns"]) >= 3, args.timeout)
    print(f"\nsession {session}: {len(view['turns'])} turns in the store")
    for t in view["turns"]:
        nxt = t["next_state"]
        link = (f"next state: {nxt['messages'][0]['content'][:50]!r}"
                if nxt and nxt.get("messages") else "next state: (none yet)")
        tokens = f"{t['prompt_tokens']}+{t['completion_tokens']} token ids"
        print(f"  turn {t['turn_index']} {t['event_id'][:8]} {tokens}, {link}")

    found = unnamed(proxy, args.key)
    listed = poll(bridge, "/v1/sessions",
                  lambda b: any(s["session_id"] == found for s in b["data"]), args.timeout)
    mine = next(s for s in listed["data"] if s["session_id"] == found)
    print(f"\nunnamed call → session {found}: {mine['turns']} turn(s), "
          f"{mine['main_turns']} main, model {mine['model']!r}")

    r = bridge.post("/v1/tasks", json={"prompt": QUESTIONS[0], "answer": "7"})
    r.raise_for_status()
    task_id = r.json()["task_id"]
    status = poll(bridge, f"/v1/tasks/{task_id}",
                  lambda b: b["results"] and b["results"][0]["scores"] and b["feedback"],
                  args.timeout)
    result = status["results"][0]
    print(f"\ntask {task_id[:8]}: {status['status']}")
    for step, score in zip(result["steps"], result["scores"][0]["step_scores"], strict=False):
        print(f"  step [{score:.2f}] {step[:70]}")
    print(f"  answer {result['final_answer']!r}, outcome "
          f"{result['scores'][0]['outcome_score']:.2f}")
    print(f"  feedback: {status['feedback'][0]['feedback'][:100]}")


if __name__ == "__main__":
    main()
