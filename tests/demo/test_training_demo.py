"""The training demo's orchestration: evaluate → train (with a mid-run check) → evaluate.

Workers answer from a script (right for odd sampling seeds, wrong for even ones, so every
group has reward variance); the trainer is the real PolicyTrainer on the tiny model.
"""

from __future__ import annotations

import re
from typing import Any

from tentalis.config import load_settings
from tentalis.config.training import TrainConfig
from tentalis.demo.training import run_training_demo
from tentalis.events import TaskEvent
from tentalis.inference.base import ChatRequest
from tentalis.training import feeder


def _answer(req: ChatRequest) -> str:
    prompt = req.messages[-1]["content"]
    total = sum(int(x) for x in re.findall(r"\d+", prompt))
    right = req.temperature == 0 or (req.seed or 0) % 2 == 1
    value = total if right else total + 1
    return f"<step>{prompt[:20]}</step>\n<step>the sum is {value}</step>\nAnswer: {value}"


async def test_demo_trains_publishes_and_evaluates_mid_run(
    memory_bus, scripted_inference, tiny_model_dir, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path / "home"))
    settings = load_settings(inference_max_batch=16, manager_max_in_flight=16,
                             worker_adapter="demo", task_timeout_seconds=30)
    inference = scripted_inference(_answer)
    config = TrainConfig(group_size=4, prompts_per_step=2, micro_batch_size=8, save_every=1,
                         adapter_name="demo", learning_rate=1e-3,
                         output_dir=tmp_path / "training")
    said: list[str] = []
    rounds: list[int] = []
    sample_round = feeder.training_round

    def recording_round(config: TrainConfig, round_index: int, **kw: Any) -> list[TaskEvent]:
        rounds.append(round_index)
        return sample_round(config, round_index, **kw)

    monkeypatch.setattr(feeder, "training_round", recording_round)

    report = await run_training_demo(
        memory_bus, settings, inference, tiny_model_dir, config, minutes=0.1, eval_tasks=6,
        workers=1, level="addition", train_max_new_tokens=24, run_dir=tmp_path / "run",
        say=said.append, mid_evals=1,
    )

    assert report.before.n == report.after.n == 6
    assert report.steps and all(not m.skipped for m in report.steps)
    # before, one mid-run check after some training, after — on the same held-out tasks
    assert report.eval_points[0][0] == 0
    assert len(report.eval_points) == 3
    mid_step, final_step = report.eval_points[1][0], report.eval_points[2][0]
    assert 0 < mid_step <= final_step == report.steps[-1].step
    assert any("held-out check" in line for line in said)
    # every step was published and the workers loaded it
    assert report.adapter_versions and len(report.adapter_versions) >= final_step
    assert "demo" in inference.adapters()
    assert report.curve is not None and report.curve.stat().st_size > 0
    # the mid-run segment continued with new rounds (new seeds) instead of replaying round 0;
    # a problem may still recur by chance in a later round, so prompts are not compared
    assert len(rounds) > 1 and rounds == list(range(len(rounds)))
    sampled = sum(1 for r in inference.requests if r.temperature > 0)
    assert sampled % config.group_size == 0 and sampled >= len(rounds) * config.group_size
