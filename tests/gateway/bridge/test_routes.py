"""The bridge's router mounted alone, its state given through the dependency override."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tentalis.events import TaskEvent
from tentalis.gateway.bridge import BridgeState, bridge_state, router


class _Publisher:
    running = True

    def __init__(self) -> None:
        self.events: list[Any] = []

    def submit(self, event: Any) -> None:
        self.events.append(event)


class _Store:
    """Knows no task (as a store the recorder has not reached yet)."""

    def task_view(self, task_id: str) -> None:
        return None


def test_task_routes_alone_take_their_state_from_the_dependency() -> None:
    publisher = _Publisher()
    state = BridgeState(bus=None, publisher=publisher, store=_Store(),  # type: ignore[arg-type]
                        source="route-test")
    state.remember(TaskEvent(task_id="t-1", prompt="2+2?", environment="math"))
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[bridge_state] = lambda: state
    with TestClient(app) as client:
        got = client.get("/v1/tasks/t-1")
        assert got.status_code == 200
        assert (got.json()["status"], got.json()["prompt"]) == ("submitted", "2+2?")
        assert client.get("/v1/tasks/t-unknown").status_code == 404
        accepted = client.post("/v1/tasks", json={"prompt": "3+4?"})
        assert accepted.status_code == 202
    [task] = publisher.events
    assert (task.prompt, task.source) == ("3+4?", "route-test")
    assert task.task_id == accepted.json()["task_id"] and task.task_id in state.submitted
