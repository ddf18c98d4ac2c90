"""``tentalis status`` says why promotion is paused; ``tentalis train --resume-promotion``
lifts the pause (no bus running: through the store)."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from tentalis.bus.memory import MemoryBus
from tentalis.cli import commands
from tentalis.cli.app import app
from tentalis.events import GuardEvent
from tentalis.store import ExperienceStore
from tentalis.store.guard import GuardLedger


@pytest.fixture
def home(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    monkeypatch.setenv("TENTALIS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:9")  # nothing answers there
    monkeypatch.setenv("NATS_EMBEDDED", "never")
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def _pause(home) -> GuardEvent:  # type: ignore[no-untyped-def]
    event = GuardEvent(trainer_id="trainer-01", level="hard_stop", signals=["length_drift"],
                       reason="mean completion length 80.0 tokens is 4.00σ", step=7)
    with ExperienceStore(home / "experience.db") as store:
        GuardLedger(store).record(event)
    return event


def test_status_shows_the_pause_and_resume_lifts_it(home) -> None:  # type: ignore[no-untyped-def]
    event = _pause(home)
    runner = CliRunner()
    out = runner.invoke(app, ["status"])
    assert out.exit_code == 0, out.output
    assert f"trainer-01: promotion paused: {event.reason}" in out.output
    out = runner.invoke(app, ["train", "--resume-promotion"])
    assert out.exit_code == 0, out.output
    assert "promotion resumed (paused at step 7" in out.output
    assert "promotion paused" not in runner.invoke(app, ["status"]).output
    out = runner.invoke(app, ["train", "--resume-promotion"])
    assert "promotion is not paused" in out.output
    with ExperienceStore(home / "experience.db") as store:
        assert [e.level for e in GuardLedger(store).history("trainer-01")] == [
            "resumed", "hard_stop"]


async def test_status_reads_the_pause_from_the_trainer_health(capsys) -> None:  # type: ignore[no-untyped-def]
    bus = MemoryBus()
    await bus.connect()
    await bus.put_health("trainer-01", {"kind": "trainer", "status": "running",
                                        "last_beat": time.time(), "promotion": "paused",
                                        "promotion_reason": "KL rising"})
    shown = await commands._print_bus(bus)
    assert shown == {"trainer-01"}
    assert "trainer-01: promotion paused: KL rising" in capsys.readouterr().out
