"""Metrics: matmul peak, TensorBoard + JSONL logging, the step table, the learning curve."""

from __future__ import annotations

import json

from rich.console import Console

from tentalis.training.metrics import (
    MetricsLogger,
    StepMetrics,
    learning_curve_png,
    measure_matmul_peak,
    step_table,
)


def test_matmul_peak_is_positive() -> None:
    assert measure_matmul_peak("cpu", size=128, seconds=0.05) > 0


def test_logger_writes_tensorboard_and_jsonl(tmp_path) -> None:
    with MetricsLogger(tmp_path) as log:
        log.log(1, StepMetrics(step=1, loss=0.5, reward_mean=0.25, mfu=0.1))
        log.log(2, {"accuracy": 0.75}, tag="eval")
    assert list(tmp_path.glob("events.out.tfevents.*"))
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(x["step"], x["tag"]) for x in lines] == [(1, "train"), (2, "eval")]
    assert lines[0]["loss"] == 0.5 and "kl" not in lines[0] and lines[1]["accuracy"] == 0.75

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert "train/loss" in events.Tags()["scalars"]
    assert events.Scalars("eval/accuracy")[0].value == 0.75

    with MetricsLogger(tmp_path, tensorboard=False) as again:  # resume appends
        assert again.lines == 2
        again.log(3, StepMetrics(step=3))
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3


def test_step_table_renders() -> None:
    console = Console(record=True, width=200)
    console.print(step_table(StepMetrics(step=7, loss=0.123, kl=0.01, mfu=0.05)))
    text = console.export_text()
    assert "step 7" in text and "0.1230" in text and "5.0%" in text
    skipped = StepMetrics(step=7, skipped=True, skip_reason="no signal")
    console.print(step_table(skipped))
    assert "skipped: no signal" in console.export_text()


def test_learning_curve_png(tmp_path) -> None:
    out = learning_curve_png(
        tmp_path / "plots" / "curve.png", [1, 2, 3], [0.1, 0.4, 0.5], [(0, 0.2), (3, 0.6)]
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert learning_curve_png(tmp_path / "no_eval.png", [1], [0.0]).stat().st_size > 0
