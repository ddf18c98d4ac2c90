"""``tentalis status``: the experience store's counts, each kind once."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from tentalis.cli.app import app
from tentalis.events import DeadLetterEvent, TaskEvent
from tentalis.store import ExperienceStore


def test_status_counts_dead_letters_once(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    monkeypatch.setenv("TENTALIS_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:9")  # nothing answers there
    monkeypatch.setenv("NATS_EMBEDDED", "never")
    monkeypatch.setenv("COLUMNS", "200")
    with ExperienceStore(tmp_path / "experience.db") as store:
        store.append([TaskEvent(prompt="2+2?"),
                      DeadLetterEvent(original_subject="s", consumer="c", reason="r", payload="")])

    out = CliRunner().invoke(app, ["status"])

    assert out.exit_code == 0, out.output
    rows = [line for line in out.output.splitlines() if re.search(r"\bdead.letter", line)]
    assert len(rows) == 1, rows
    assert re.search(r"\bdead_letter\b.*\b1\b", rows[0])
    assert re.search(r"\btotal\b.*\b2\b", out.output)
