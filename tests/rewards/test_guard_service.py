"""A planted length-hacking run through the real trainer service and the tiny model: the
guard trips, promotion stops, the reason is recorded and shown; an operator resumes it.
A clean run with the same service stays quiet and promotes every version."""

from __future__ import annotations

import asyncio

import pytest
from transformers import AutoTokenizer

from tentalis.bus.base import ConsumerSpec
from tentalis.bus.memory import MemoryBus
from tentalis.config.training import TrainConfig
from tentalis.events import (
    Event,
    GuardEvent,
    ModelUpdateEvent,
    ResultEvent,
    ScoreEvent,
    Subjects,
    TaskEvent,
)
from tentalis.inference.adapters import AdapterStore
from tentalis.rewards.base import StepScores
from tentalis.rewards.guard import GuardConfig
from tentalis.steps.parsing import parse_steps
from tentalis.store import ExperienceStore
from tentalis.store.guard import GuardLedger
from tentalis.store.training import TrainingLedger
from tentalis.training.checkpoint import CheckpointManager
from tentalis.training.promotion import resume_promotion
from tentalis.training.service import TrainerService, TrainerServiceConfig
from tentalis.training.trainer import PolicyTrainer

GUARD = GuardConfig(warmup=16, window=8, check_every=4, kl_rising_checks=2, min_pairs=4)
GROUP = 4  # completions per prompt; 2 prompts per step → 8 rollouts per step
GROUPS = 10  # 5 steps, an adapter version each


class LengthLovingScorer:
    """Planted, hackable scorer (tests only): pays for words, not for being right."""

    name = "length_loving"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        words = len(result.raw_text.split())
        reward = min(1.0, words / 60)
        return StepScores(step_scores=[reward] * len(result.steps), outcome_score=reward)


async def _scored(tok, scorer, group: str, j: int, padding: int) -> ScoreEvent:  # type: ignore[no-untyped-def]
    """One sample of a group whose answer carries ``padding`` filler words."""
    text = "<step>2 + 3 = 5" + " indeed" * padding + "</step>\nAnswer: 5"
    task = TaskEvent(prompt="What is 2 + 3?", answer="5", group_id=group, sample_index=j,
                     split="train")
    parsed = parse_steps(text)
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text=text,
                         steps=parsed.steps, final_answer=parsed.final_answer,
                         prompt_token_ids=tok("What is 2 + 3?")["input_ids"],
                         completion_token_ids=tok(text, add_special_tokens=False)["input_ids"],
                         finish_reason="stop")
    s = await scorer.score(task, result)
    return ScoreEvent(task_id=task.task_id, result=result, scorer=scorer.name,
                      step_scores=s.step_scores, outcome_score=s.outcome_score)


async def _feed(bus: MemoryBus, tok, groups: range, hack_from: int | None) -> None:  # type: ignore[no-untyped-def]
    """Groups of GROUP samples; from group ``hack_from`` on, answers grow by four filler
    words per group (what a policy learns from a length-loving scorer)."""
    scorer = LengthLovingScorer()
    for g in groups:
        grow = 0 if hack_from is None or g < hack_from else 4 * (g - hack_from + 1)
        for j in range(GROUP):
            await bus.publish(await _scored(tok, scorer, f"g{g}", j, 2 * j + grow))


def _service(bus, tiny_model_dir, tmp_path) -> TrainerService:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(group_size=GROUP, prompts_per_step=2, save_every=1, micro_batch_size=8,
                      lora_r=2, lora_alpha=4, adapter_name="t", seed=0)
    return TrainerService(
        bus, PolicyTrainer(tiny_model_dir, cfg),
        TrainingLedger(ExperienceStore(tmp_path / "x.db"), "trainer-t"),
        CheckpointManager(tmp_path / "ck", keep_last=1), AdapterStore(tmp_path / "adapters"),
        TrainerServiceConfig(trainer_id="trainer-t"), guard=GUARD,
    )


async def _wait(service: TrainerService, task: asyncio.Task, pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def, type-arg]
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if task.done():
            task.result()
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _stop(task: asyncio.Task, stop: asyncio.Event) -> None:  # type: ignore[type-arg]
    stop.set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _read(bus: MemoryBus, subject: str) -> list[Event]:
    """Everything published on ``subject`` so far (one batch of a fresh consumer)."""
    spec = ConsumerSpec(name=f"probe-{subject.replace('.', '-')}", subjects=[subject],
                        batch=100, fetch_timeout=0.1)
    async for batch in bus.consume(spec):
        return [d.event for d in batch]
    return []


@pytest.fixture
def tok(tiny_model_dir):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


async def test_length_hacking_run_trips_the_guard_and_blocks_promotion(
    tiny_model_dir, tmp_path, tok
) -> None:
    bus = MemoryBus()
    await bus.connect()
    await _feed(bus, tok, range(4), hack_from=4)  # 2 clean steps: the guard's warm-up
    service = _service(bus, tiny_model_dir, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await _wait(service, task, lambda: len(service.published) >= 2)
        assert [v.version for v in service.published] == [1, 2] and not service.gate.paused
        await _feed(bus, tok, range(4, GROUPS), hack_from=4)  # then the policy starts padding
        await _wait(service, task,
                    lambda: len(service.published) + len(service.held) >= GROUPS // 2)
        assert service.gate.paused
        stop_event = service.gate.paused_by
        assert stop_event is not None and stop_event.level == "hard_stop"
        assert "length_drift" in stop_event.signals
        assert stop_event.numbers["length_drift"] > GUARD.length_z_threshold
        promoted = [v.version for v in service.published]
        held = [v.version for v, _, _ in service.held]
        # promoted before the trip, held back after it: no ModelUpdateEvent for a held one
        assert promoted and held and max(promoted) < min(held) and max(held) == GROUPS // 2
        health = service.gate.health()  # what the heartbeat carries to `tentalis status`
        assert (health["promotion"], health["promotion_reason"]) == ("paused", stop_event.reason)
        # recorded in the store: the pause survives a restart
        store = ExperienceStore(tmp_path / "x.db")
        assert GuardLedger(store).pause_state("trainer-t") == stop_event
        # the operator inspects, then resumes: the newest held version is promoted
        done = await resume_promotion(store, bus, "trainer-t", by="tester")
        assert done is not None and done[0] == stop_event
        await _wait(service, task, lambda: not service.gate.paused and len(service.published)
                    > len(promoted))
        assert service.published[-1].version == GROUPS // 2 and service.held == []
        assert service.gate.guard is not None and service.gate.guard.baseline is None
        assert GuardLedger(store).pause_state("trainer-t") is None
        store.close()
    finally:
        await _stop(task, stop)
        service.ledger.store.close()
    updates = await _read(bus, Subjects.MODEL_UPDATE)
    assert [u.version for u in updates if isinstance(u, ModelUpdateEvent)] == [
        *promoted, GROUPS // 2]
    guards = [g for g in await _read(bus, Subjects.GUARD) if isinstance(g, GuardEvent)]
    assert [g.level for g in guards][-2:] == ["hard_stop", "resumed"]


async def test_clean_run_stays_quiet_and_promotes_every_version(
    tiny_model_dir, tmp_path, tok
) -> None:
    bus = MemoryBus()
    await bus.connect()
    await _feed(bus, tok, range(GROUPS), hack_from=None)
    service = _service(bus, tiny_model_dir, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await _wait(service, task, lambda: len(service.published) >= GROUPS // 2)
    finally:
        await _stop(task, stop)
        service.ledger.store.close()
    assert service.gate.guard is not None and service.gate.guard.checks >= 3
    assert service.gate.emitted == [] and not service.gate.paused
    assert [v.version for v in service.published] == list(range(1, GROUPS // 2 + 1))


async def test_restarted_trainer_keeps_promotion_paused(tiny_model_dir, tmp_path, tok) -> None:
    store = ExperienceStore(tmp_path / "x.db")
    GuardLedger(store).record(GuardEvent(trainer_id="trainer-t", level="hard_stop",
                                         signals=["length_drift"], reason="planted", step=3))
    store.close()
    bus = MemoryBus()
    await bus.connect()
    await _feed(bus, tok, range(2), hack_from=None)
    service = _service(bus, tiny_model_dir, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        # published_step moves when the version is saved, before the gate decides to hold or
        # announce it: wait for the decision
        await _wait(service, task, lambda: service.held or service.published)
    finally:
        await _stop(task, stop)
        service.ledger.store.close()
    assert service.published == [] and [v.version for v, _, _ in service.held] == [1]
    assert service.gate.health()["promotion_reason"] == "planted"
