"""TrainerRun: the latest weights are published on exit exactly once, and a crash of the
trainer service stops the run at once, marks its heartbeat failed and raises TrainingError.

The trainer is the real PolicyTrainer on the tiny model. The unit tests use the in-memory
bus; the last two run ``tentalis train`` and ``tentalis status`` as processes against a
real nats-server, one of them with a fault injected into the training step.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.bus.base import Bus, ConsumerSpec
from tentalis.bus.memory import MemoryBus
from tentalis.config import Settings, load_settings
from tentalis.config.training import TrainConfig
from tentalis.errors import TrainingError
from tentalis.events import ModelUpdateEvent, ResultEvent, ScoreEvent, Subjects, TaskEvent
from tentalis.inference.adapters import AdapterStore
from tentalis.services.trainer_run import TrainerRun, TrainerRunOptions

ANSWERS = ["5", "6"]  # right, wrong: every group has reward variance


async def _publish_group(bus: Bus, tok, group: str, size: int = 2) -> None:  # type: ignore[no-untyped-def]
    """One scored training group for the prompt "What is 2 + 3?" (rewards 1, 0, 1, …)."""
    for j in range(size):
        answer = ANSWERS[j % 2]
        text = f"<step>2 + 3 = {answer}</step>\nAnswer: {answer}"
        task = TaskEvent(prompt="What is 2 + 3?", answer="5", group_id=group, sample_index=j,
                         split="train")
        result = ResultEvent(
            task_id=task.task_id, task=task, worker_id="w", raw_text=text,
            steps=[f"2 + 3 = {answer}"], final_answer=answer,
            prompt_token_ids=tok("What is 2 + 3?")["input_ids"],
            completion_token_ids=tok(text, add_special_tokens=False)["input_ids"],
            finish_reason="stop")
        reward = 1.0 - j % 2
        await bus.publish(ScoreEvent(task_id=task.task_id, result=result, scorer="t",
                                     step_scores=[reward], outcome_score=reward))


def _config(save_every: int) -> TrainConfig:
    return TrainConfig(group_size=2, prompts_per_step=1, save_every=save_every,
                       micro_batch_size=4, lora_r=4, lora_alpha=8, adapter_name="t", seed=0)


@pytest.fixture
def tok(tiny_model_dir):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def settings(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path / "home"))
    return load_settings(llm_model=str(tiny_model_dir))


async def _updates(bus: MemoryBus) -> list[ModelUpdateEvent]:
    spec = ConsumerSpec(name="probe", subjects=[Subjects.MODEL_UPDATE], batch=50,
                        fetch_timeout=0.1)
    got: list[ModelUpdateEvent] = []

    async def drain() -> None:
        async for batch in bus.consume(spec):
            for d in batch:
                got.append(d.event)  # type: ignore[arg-type]
                await d.ack()

    with pytest.raises(TimeoutError):  # no more to come: nothing else is published
        await asyncio.wait_for(drain(), 0.5)
    return got


@pytest.mark.parametrize("save_every", [1, 2])
async def test_the_latest_weights_are_published_once_on_exit(
    settings: Settings, tok, save_every: int  # type: ignore[no-untyped-def]
) -> None:
    """save_every=2, one step: the exit publishes it. save_every=1: the service already
    did, and the exit does not publish it a second time."""
    bus = MemoryBus()
    await bus.connect()
    run = await TrainerRun.build(bus, settings, _config(save_every),
                                 TrainerRunOptions(trainer_id="trainer-t", max_steps=1))
    await _publish_group(bus, tok, "g1")
    await asyncio.wait_for(run.run(), 120)

    assert run.trainer.step == 1
    assert [v.version for v in run.service.published] == [1]
    assert [(u.version, u.step) for u in await _updates(bus)] == [(1, 1)]
    assert (await bus.get_health())["trainer-t"]["status"] == "stopped"


async def test_a_crashed_service_stops_the_run_and_is_reported(
    settings: Settings, tok  # type: ignore[no-untyped-def]
) -> None:
    bus = MemoryBus()
    await bus.connect()
    run = await TrainerRun.build(bus, settings, _config(1),
                                 TrainerRunOptions(trainer_id="trainer-t"))

    def broken(groups):  # type: ignore[no-untyped-def]
        raise RuntimeError("injected fault")

    run.trainer.train_step = broken  # type: ignore[method-assign]
    body_ended = asyncio.Event()

    async def feeder(run: TrainerRun) -> None:  # would feed for an hour
        try:
            await asyncio.sleep(3600)
        finally:
            body_ended.set()

    await _publish_group(bus, tok, "g1")
    with pytest.raises(TrainingError, match="trainer-t failed: RuntimeError: injected fault"):
        await asyncio.wait_for(run.run(feeder), 120)

    assert body_ended.is_set()  # the feeder was stopped, not left running
    assert run.service.published == [] and await _updates(bus) == []
    health = (await bus.get_health())["trainer-t"]
    assert (health["status"], health["reason"]) == ("failed", "RuntimeError: injected fault")


async def test_a_failing_body_still_publishes_and_is_reported(
    settings: Settings, tok  # type: ignore[no-untyped-def]
) -> None:
    bus = MemoryBus()
    await bus.connect()
    run = await TrainerRun.build(bus, settings, _config(5),
                                 TrainerRunOptions(trainer_id="trainer-t"))

    async def feeder(run: TrainerRun) -> None:
        await _publish_group(bus, tok, "g1")
        deadline = time.monotonic() + 120
        while run.trainer.step < 1:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        raise ValueError("feeder broke")

    with pytest.raises(ValueError, match="feeder broke"):
        await run.run(feeder)
    assert [v.version for v in run.service.published] == [1]  # the step was not lost
    health = (await bus.get_health())["trainer-t"]
    assert (health["status"], health["reason"]) == ("failed", "ValueError: feeder broke")


# --- the CLI against a real nats-server ------------------------------------------------

FAULTY_TRAIN = textwrap.dedent("""
    # `tentalis train` with a fault injected into every training step (test only)
    import sys

    from tentalis.cli.app import main
    from tentalis.training.trainer import PolicyTrainer

    def broken(self, groups):
        raise RuntimeError("injected fault")

    PolicyTrainer.train_step = broken
    sys.argv = ["tentalis", *sys.argv[1:]]
    main()
""")

TRAIN_ARGS = ["train", "--group-size", "2", "--prompts-per-step", "1", "--micro-batch-size",
              "4", "--lora-r", "4", "--save-every", "1", "--adapter-name", "t",
              "--trainer-id", "trainer-t", "--max-steps", "1"]


def _env(server: EmbeddedNats, home: Path, model: Path) -> dict[str, str]:
    return {**os.environ, "NATS_URL": server.url, "NATS_EMBEDDED": "never",
            "TENTALIS_HOME": str(home), "LLM_MODEL": str(model), "COLUMNS": "200",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


async def _train(args: list[str], env: dict[str, str], server: EmbeddedNats, tok,  # type: ignore[no-untyped-def]
                 timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Start the trainer process, give it one scored group once it consumes, and wait for
    it to exit (killed and failed at ``timeout``)."""
    proc = subprocess.Popen([sys.executable, *args, *TRAIN_ARGS], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bus = NatsBus(server.url)
    await bus.connect()
    try:
        deadline = time.monotonic() + timeout
        while not any(c.name == "trainer-t" for c in (await bus.info()).consumers):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the trainer never started consuming"
            await asyncio.sleep(0.2)
        await _publish_group(bus, tok, "g1")
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"tentalis train did not exit within {timeout:g}s:\n{err[-3000:]}")
            await asyncio.sleep(0.2)
        out, err = proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        await bus.close()


def _service_row(env: dict[str, str], service: str) -> str:
    """``service``'s row in the services table of ``tentalis status``."""
    done = subprocess.run([sys.executable, "-m", "tentalis", "status"], env=env, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    services = done.stdout.split("services", 1)[1]
    return next(line for line in services.splitlines() if f" {service} " in line)


@pytest.mark.nats
async def test_a_fault_in_a_step_fails_tentalis_train_and_status_shows_it(
    tmp_path: Path, tiny_model_dir: Path, tok  # type: ignore[no-untyped-def]
) -> None:
    script = tmp_path / "faulty_train.py"
    script.write_text(FAULTY_TRAIN)
    with EmbeddedNats(tmp_path / "nats") as server:
        env = _env(server, tmp_path / "home", tiny_model_dir)
        done = await _train([str(script)], env, server, tok)
        assert done.returncode == TrainingError.exit_code, done.stderr[-3000:]
        assert "trainer trainer-t failed: RuntimeError: injected fault" in done.stderr
        row = _service_row(env, "trainer-t")
        assert "failed: RuntimeError: injected fault" in row


@pytest.mark.nats
async def test_a_max_steps_run_exits_0_and_status_shows_it_stopped(
    tmp_path: Path, tiny_model_dir: Path, tok  # type: ignore[no-untyped-def]
) -> None:
    with EmbeddedNats(tmp_path / "nats") as server:
        env = _env(server, tmp_path / "home", tiny_model_dir)
        done = await _train(["-m", "tentalis"], env, server, tok)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "stopped" in _service_row(env, "trainer-t")
    assert AdapterStore(tmp_path / "home" / "adapters").versions("t") == [1]


async def test_a_service_that_stops_consuming_on_its_own_fails_the_run(
    settings: Settings,
) -> None:
    bus = MemoryBus()
    await bus.connect()
    run = await TrainerRun.build(bus, settings, _config(1),
                                 TrainerRunOptions(trainer_id="trainer-t", heartbeat=False))

    async def lose_the_bus(run: TrainerRun) -> None:
        await asyncio.sleep(0.2)
        await bus.close()  # the service's consumer ends without a stop
        await asyncio.sleep(3600)

    with pytest.raises(TrainingError, match="stopped consuming before the run ended"):
        await asyncio.wait_for(run.run(lose_the_bus), 60)
