"""The bridge: submit, status with steps/scores/feedback, feedback kinds, sessions, SSE."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tentalis.bus.memory import MemoryBus
from tentalis.events import FeedbackEvent, ResultEvent, ScoreEvent, SessionEvent, TaskEvent
from tentalis.gateway.bridge import create_bridge_app
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool


@contextlib.asynccontextmanager
async def bridge(serve: Any, store: Any, tmp_path: Any, gw: Any,
                 security: SecurityConfig | None = None
                 ) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryBus]]:
    bus = MemoryBus()
    await bus.connect()
    publisher = EventPublisher(bus, Spool(tmp_path / "bridge.jsonl"))
    app = create_bridge_app(bus, publisher, store, security)
    async with gw.recording(bus, store), serve(app) as url, \
            httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client, bus


async def answer_and_score(bus: MemoryBus, task: TaskEvent) -> ResultEvent:
    """What a worker, the scorer and the manager would publish for ``task``."""
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w1", raw_text="r",
                         steps=["2 + 2 = 4"], final_answer="4")
    await bus.publish(result)
    await bus.publish(ScoreEvent(task_id=task.task_id, result=result, scorer="math",
                                 step_scores=[1.0], outcome_score=1.0))
    await bus.publish(FeedbackEvent(task_id=task.task_id, result_event_id=result.event_id,
                                    feedback="Correct.", score=1.0, manager_id="manager-01"))
    return result


async def test_task_lifecycle_steps_scores_and_every_feedback_kind(serve, store, tmp_path,
                                                                   gw) -> None:
    async with bridge(serve, store, tmp_path, gw) as (http, bus):
        r = await http.post("/v1/tasks", json={"prompt": "2 + 2?", "answer": "4"})
        assert r.status_code == 202
        task_id = r.json()["task_id"]
        status = (await http.get(f"/v1/tasks/{task_id}")).json()["status"]
        assert status in ("submitted", "pending")
        await gw.wait_for(lambda: store.counts()["task"] == 1)
        task = store.task_view(task_id).task
        result = await answer_and_score(bus, task)
        await gw.wait_for(lambda: store.counts()["feedback"] == 1)
        body = (await http.get(f"/v1/tasks/{task_id}")).json()
        assert body["status"] == "done" and body["results"][0]["steps"] == ["2 + 2 = 4"]
        assert body["results"][0]["scores"][0]["step_scores"] == [1.0]
        kinds = [
            {"kind": "score", "score": 0.25},
            {"kind": "thumbs", "thumbs": "down"},
            {"kind": "critique", "text": "Show the carry."},
            {"kind": "edit", "edited_answer": "<step>2 + 2 = 4</step> Answer: 4"},
        ]
        for fb in kinds:
            r = await http.post(f"/v1/tasks/{task_id}/feedback",
                                json={"feedback": fb, "result_event_id": result.event_id,
                                      "author": "alice"})
            assert r.status_code == 202 and r.json()["kind"] == fb["kind"]
        await gw.wait_for(lambda: store.counts()["feedback"] == 5)
        got = (await http.get(f"/v1/tasks/{task_id}")).json()["feedback"]
        external = {f["kind"]: f for f in got if f["author"] == "alice"}
        assert external["score"]["score"] == 0.25 and external["thumbs"]["score"] == 0.0
        assert external["critique"]["feedback"] == "Show the carry."
        assert external["edit"]["edited_answer"].startswith("<step>")
        rows = store.read("SELECT feedback_kind FROM feedback ORDER BY created_at")
        assert [r[0] for r in rows] == ["review", "score", "thumbs", "critique", "edit"]


@pytest.mark.parametrize("bad", [
    {"feedback": {"kind": "score"}},
    {"feedback": {"kind": "score", "score": 1.5}},
    {"feedback": {"kind": "thumbs", "thumbs": "sideways"}},
    {"feedback": {"kind": "critique", "text": ""}},
    {"feedback": {"kind": "nonsense"}},
    {"nothing": 1},
])
async def test_invalid_feedback_is_a_422_and_unknown_ids_404(serve, store, tmp_path, gw,
                                                             bad) -> None:
    async with bridge(serve, store, tmp_path, gw) as (http, _):
        task_id = (await http.post("/v1/tasks", json={"prompt": "p"})).json()["task_id"]
        assert (await http.post(f"/v1/tasks/{task_id}/feedback", json=bad)).status_code == 422
        ok = {"feedback": {"kind": "thumbs", "thumbs": "up"}}
        assert (await http.post("/v1/tasks/nope/feedback", json=ok)).status_code == 404
        assert (await http.get("/v1/tasks/nope")).status_code == 404
        assert (await http.get("/v1/sessions/nope")).status_code == 404
        assert (await http.get("/v1/events?subjects=everything")).status_code == 400


async def test_idempotency_key_makes_a_retry_one_event(serve, store, tmp_path, gw) -> None:
    async with bridge(serve, store, tmp_path, gw) as (http, _):
        headers = {"Idempotency-Key": "retry-me"}
        a = (await http.post("/v1/tasks", json={"prompt": "p"}, headers=headers)).json()
        b = (await http.post("/v1/tasks", json={"prompt": "p"}, headers=headers)).json()
        assert a == b
        r = (await http.post("/v1/requests", json={"text": "what is 3 + 4?"})).json()
        await gw.wait_for(lambda: store.counts()["task"] == 2)
        assert store.task_view(r["task_ids"][0]).task.request_id == r["request_id"]


async def test_session_feedback_and_view(serve, store, tmp_path, gw) -> None:
    async with bridge(serve, store, tmp_path, gw) as (http, bus):
        turn = SessionEvent(session_id="s1", messages=[{"role": "user", "content": "q"}],
                            completion="a")
        await bus.publish(turn)
        r = await http.post("/v1/sessions/s1/feedback",
                            json={"feedback": {"kind": "critique", "text": "too terse"},
                                  "turn_event_id": turn.event_id})
        assert r.status_code == 202
        await gw.wait_for(lambda: store.counts()["feedback"] == 1)
        body = (await http.get("/v1/sessions/s1")).json()
        assert body["turns"][0]["completion"] == "a"
        assert body["feedback"][0]["kind"] == "critique"
        status = (await http.get("/v1/status")).json()
        assert status["bus"]["connected"] and status["store"]["session"] == 1


async def test_live_events_over_sse(serve, store, tmp_path, gw) -> None:
    async with bridge(serve, store, tmp_path, gw) as (http, _):
        async def read() -> list[str]:
            async with http.stream("GET", "/v1/events",
                                   params={"subjects": "task,feedback", "max_events": 2}) as s:
                assert s.headers["content-type"].startswith("text/event-stream")
                return [line async for line in s.aiter_lines()]

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.3)
        task_id = (await http.post("/v1/tasks", json={"prompt": "p"})).json()["task_id"]
        await http.post(f"/v1/tasks/{task_id}/feedback",
                        json={"feedback": {"kind": "thumbs", "thumbs": "up"}})
        lines = await asyncio.wait_for(reader, 10)
        assert [ln for ln in lines if ln.startswith("event:")] == ["event: task",
                                                                   "event: feedback"]
        assert any(task_id in ln for ln in lines if ln.startswith("data:"))


async def test_recent_sessions_are_listed_with_their_turn_counts_page_by_page(
    serve, store, tmp_path, gw
) -> None:
    def turn(session: str, index: int, **fields: Any) -> SessionEvent:
        return SessionEvent(session_id=session, turn_index=index, completion="c",
                            messages=[{"role": "user", "content": "q"}], **fields)

    events = [
        turn("agent", 0, model="small", prompt_token_ids=[1, 2, 3], completion_token_ids=[4],
             logprobs=[-0.5]),
        turn("agent", 1, trainable=False, turn_type="side"),
        turn("agent", 2, trainable=False, finish_reason="error:rejected"),
        turn("agent", 3, model="big"),
    ]
    events += [events[-1].model_copy(update={"event_id": "second-choice"}),  # n=2: one turn
               turn("chat", 0, model="small")]
    async with bridge(serve, store, tmp_path, gw) as (http, bus):
        for event in events:
            await bus.publish(event)
        await gw.wait_for(lambda: store.counts()["session"] == 6)
        first = (await http.get("/v1/sessions", params={"limit": 1})).json()
        assert [s["session_id"] for s in first["data"]] == ["chat"]
        assert first["next_offset"] == 1
        rest = (await http.get("/v1/sessions", params={"limit": 1, "offset": 1})).json()
        [agent] = rest["data"]
        assert rest["next_offset"] is None
        assert (agent["session_id"], agent["turns"], agent["main_turns"], agent["side_turns"],
                agent["failed_turns"], agent["model"]) == ("agent", 4, 2, 1, 1, "big")
        assert agent["first_at"] < agent["last_at"]
        assert (await http.get("/v1/sessions", params={"limit": 0})).status_code == 422
        turns = (await http.get("/v1/sessions/agent")).json()["turns"]
        assert [t["turn_type"] for t in turns][:2] == ["main", "side"]
        assert (turns[0]["prompt_tokens"], turns[0]["completion_tokens"],
                turns[0]["has_logprobs"], turns[0]["prompt_token_ids"]) == (3, 1, True, None)
        assert turns[1]["prompt_tokens"] is None and not turns[1]["has_logprobs"]
        full = (await http.get("/v1/sessions/agent", params={"tokens": "true"})).json()
        assert full["turns"][0]["prompt_token_ids"] == [1, 2, 3]
        assert full["turns"][0]["logprobs"] == [-0.5]
