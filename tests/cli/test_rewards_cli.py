"""``tentalis rewards calibrate`` and ``profiles`` through the CLI, on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tentalis.cli.app import app
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.calibrate import write_results
from tentalis.steps.parsing import parse_steps


def result(text: str) -> ResultEvent:
    task = TaskEvent(prompt="What is 3 + 4?", answer="7")
    p = parse_steps(text)
    return ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text=text,
                       steps=p.steps, final_answer=p.final_answer, parse_status=p.status)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path))
    monkeypatch.setenv("TENTALIS_CONFIG", str(tmp_path / "none.toml"))
    return tmp_path


def test_calibrate_writes_a_report_that_says_how_it_was_made(
    home: Path, tiny_model_dir: Path
) -> None:
    good = result("<step>3 + 4 = 7</step>\nAnswer: 7")
    bad = result("<step>3 + 4 = 8</step>\nAnswer: 8")
    stored = home / "stored.jsonl"
    write_results(stored, [good, bad])
    out = home / "report"
    r = CliRunner().invoke(app, ["rewards", "calibrate", "--model", str(tiny_model_dir),
                                 "--results", str(stored), "--out", str(out), "--votes", "1"])
    assert r.exit_code == 0, r.output
    assert "agreement=" in r.output and "spearman=" in r.output and "ECE=" in r.output
    report = (out / "report.md").read_text()
    assert "tentalis rewards calibrate" in report and "seed 0" in report
    pairs = json.loads((out / "pairs.json").read_text())
    assert [label for _, label in pairs["step_pairs"]] == [1, 0]
    assert pairs["made_by"]["judge_model"] and pairs["judgements"] >= 4
    assert (out / "reliability.png").stat().st_size > 1000
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_calibrate_rejects_a_bad_results_file(home: Path, tiny_model_dir: Path) -> None:
    (home / "bad.jsonl").write_text("{not json\n")
    r = CliRunner().invoke(app, ["rewards", "calibrate", "--model", str(tiny_model_dir),
                                 "--results", str(home / "bad.jsonl"), "--out", str(home)])
    assert r.exit_code == 2 and "is not a ResultEvent" in " ".join(r.output.split())
    assert "Loading" not in r.output  # refused before any model is loaded


def test_profiles_lists_shipped_and_user_profiles(home: Path) -> None:
    (home / "profiles").mkdir()
    (home / "profiles" / "mine.toml").write_text(
        'description = "my own"\n[weights]\njudge = 1\n[why]\njudge = "because"\n')
    r = CliRunner().invoke(app, ["rewards", "profiles"])
    assert r.exit_code == 0, r.output
    for name in ("chat", "terminal", "swe", "gui", "math", "mine — my own"):
        assert name in r.output
