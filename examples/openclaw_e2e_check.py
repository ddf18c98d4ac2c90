"""The checks of ``examples/openclaw_e2e.sh``: what the bridge shows of an OpenClaw
conversation that went through the tentalis proxy.

    python examples/openclaw_e2e_check.py --bridge http://127.0.0.1:8100 \
        --since 1764960000 --expect "What is my name?"

Finds the sessions recorded since ``--since`` (``GET /v1/sessions``), takes the one with
the most trainable turns, and checks that

1. it holds at least two trainable turns (OpenClaw's two ``agent`` calls with one
   ``--session-id``; a turn that called a tool adds more);
2. they are linked: an earlier turn's next state holds the second user message
   (``--expect``), and a later turn of the same session follows it;
3. every trainable turn carries the prompt and completion token ids the backend used,
   and a log-probability per completion token, although OpenClaw never asks for them.

Prints one line per check; exits 0 when all pass, 1 otherwise. Reads the API key from
``TENTALIS_API_KEY``. Waits at most ``--timeout`` seconds for the recorder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def get(bridge: str, path: str) -> Any:
    request = urllib.request.Request(bridge.rstrip("/") + path)
    key = os.environ.get("TENTALIS_API_KEY")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.load(resp)


def recent_sessions(bridge: str, since: float) -> list[dict[str, Any]]:
    """Sessions whose last turn is at or after ``since`` (``GET /v1/sessions``)."""
    listed = get(bridge, "/v1/sessions?limit=100")
    rows = listed["data"] if isinstance(listed, dict) else listed
    return [s for s in rows if _timestamp(s.get("last_at")) >= since]


def _timestamp(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def _texts(messages: list[dict[str, Any]]) -> str:
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        out.append(f"{m.get('role')}: {content}")
    return "\n".join(out)


def conversation(bridge: str, since: float, timeout: float) -> dict[str, Any] | None:
    """The recent session with the most trainable turns, once it has two (or at the
    deadline, whatever there is)."""
    deadline = time.monotonic() + timeout
    best: dict[str, Any] | None = None
    while True:
        views = [get(bridge, f"/v1/sessions/{s['session_id']}?tokens=true")
                 for s in recent_sessions(bridge, since)]
        mains = [(sum(t["trainable"] for t in v["turns"]), v) for v in views]
        if mains:
            best = max(mains, key=lambda x: x[0])[1]
            if max(n for n, _ in mains) >= 2 and linked_turn(best) is not None:
                return best
        if time.monotonic() >= deadline:
            return best
        time.sleep(2)


def linked_turn(view: dict[str, Any], expect: str | None = None) -> dict[str, Any] | None:
    """The first trainable turn whose next state is known (and holds ``expect``)."""
    for turn in view["turns"]:
        state = turn.get("next_state")
        if turn["trainable"] and state and (expect is None or expect in _texts(
                state.get("messages") or [])):
            return turn
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bridge", required=True, help="the bridge's base URL")
    parser.add_argument("--since", type=float, required=True, help="Unix time of turn 1")
    parser.add_argument("--expect", required=True, help="the second user message")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()

    results: list[tuple[bool, str]] = []

    def check(ok: bool, what: str) -> bool:
        results.append((ok, what))
        print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
        return ok

    try:
        view = conversation(args.bridge, args.since, args.timeout)
    except (urllib.error.URLError, KeyError, ValueError) as exc:
        check(False, f"the bridge lists the recent sessions (GET /v1/sessions): {exc}")
        return 1
    if not check(view is not None, "the bridge lists a session recorded since turn 1"):
        return 1
    assert view is not None
    turns = sorted(view["turns"], key=lambda t: t["turn_index"])
    main_turns = [t for t in turns if t["trainable"]]
    print(f"  session {view['session_id']}: {len(turns)} turns, {len(main_turns)} trainable")
    for t in turns:
        state = t.get("next_state") or {}
        failed = str(t.get("finish_reason") or "").startswith("error")
        kind = "failed" if failed else "main" if t["trainable"] else "side"
        print(f"    turn {t['turn_index']} {kind:<6} "
              f"{t['event_id'][:12]}… finish={t.get('finish_reason')} "
              f"prompt_ids={len(t.get('prompt_token_ids') or [])} "
              f"completion_ids={len(t.get('completion_token_ids') or [])} "
              f"logprobs={len(t.get('logprobs') or [])} next_state={state.get('kind')}")

    check(len(main_turns) >= 2, f"two trainable turns in one session ({len(main_turns)})")
    first = linked_turn(view, args.expect)
    later = [t for t in main_turns if first is not None and t["turn_index"] > first["turn_index"]]
    check(first is not None and bool(later),
          "linked: a turn's next state holds the second user message, and a later turn "
          "of the session follows it")
    for t in main_turns:
        prompt, completion = t.get("prompt_token_ids") or [], t.get("completion_token_ids") or []
        logprobs = t.get("logprobs") or []
        check(bool(prompt) and bool(completion) and len(logprobs) == len(completion),
              f"turn {t['turn_index']} carries token ids ({len(prompt)} prompt, "
              f"{len(completion)} completion) and {len(logprobs)} log-probabilities")
    failed = sum(not ok for ok, _ in results)
    print(f"  checks: {len(results) - failed} ok, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
