"""Trainer service: scored rollouts from the bus → steps → adapters; exactly once across
a restart."""

from __future__ import annotations

import asyncio

import pytest
from transformers import AutoTokenizer

from tentalis.bus.base import ConsumerSpec
from tentalis.bus.memory import MemoryBus
from tentalis.config.training import TrainConfig
from tentalis.events import ModelUpdateEvent, ResultEvent, ScoreEvent, Subjects, TaskEvent
from tentalis.inference.adapters import AdapterStore
from tentalis.steps.parsing import parse_steps
from tentalis.store import ExperienceStore
from tentalis.store.training import TrainingLedger
from tentalis.training.checkpoint import CheckpointManager
from tentalis.training.service import TrainerService, TrainerServiceConfig
from tentalis.training.trainer import PolicyTrainer

TEXTS = ["<step>2 + 3 = 5</step>\nAnswer: 5", "<step>2 + 3 = 6</step>\nAnswer: 6"]


def _score(tok, group: str, j: int) -> ScoreEvent:  # type: ignore[no-untyped-def]
    text = TEXTS[j % 2]
    task = TaskEvent(prompt="What is 2 + 3?", answer="5", group_id=group, sample_index=j,
                     split="train")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    parsed = parse_steps(text)
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text=text,
                         steps=parsed.steps, final_answer=parsed.final_answer,
                         prompt_token_ids=tok("What is 2 + 3?")["input_ids"],
                         completion_token_ids=ids, finish_reason="stop")
    return ScoreEvent(task_id=task.task_id, result=result, scorer="t",
                      step_scores=[1.0 - j % 2], outcome_score=1.0 - j % 2)


def _service(bus, tiny_model_dir, tmp_path, ack_wait: float = 600.0) -> TrainerService:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(group_size=2, prompts_per_step=1, save_every=1, micro_batch_size=4,
                      lora_r=4, lora_alpha=8, adapter_name="t", seed=0)
    trainer = PolicyTrainer(tiny_model_dir, cfg)
    store = ExperienceStore(tmp_path / "x.db")
    return TrainerService(
        bus, trainer, TrainingLedger(store, "trainer-t"), CheckpointManager(tmp_path / "ck"),
        AdapterStore(tmp_path / "adapters"), TrainerServiceConfig(trainer_id="trainer-t",
                                                                  ack_wait=ack_wait))


async def _run_until(service: TrainerService, pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not pred():
            if task.done():
                task.result()
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        service.ledger.store.close()


@pytest.fixture
def tok(tiny_model_dir):  # type: ignore[no-untyped-def]
    return AutoTokenizer.from_pretrained(tiny_model_dir)


async def test_groups_train_publish_and_are_recorded_once(tiny_model_dir, tmp_path, tok) -> None:
    bus = MemoryBus()
    await bus.connect()
    for g in ("g1", "g2"):
        for j in range(2):
            await bus.publish(_score(tok, g, j))
    # a group with no reward variance is dropped (dynamic sampling), not trained
    flat = [_score(tok, "flat", 0), _score(tok, "flat", 2)]
    for s in flat:
        await bus.publish(s)
    service = _service(bus, tiny_model_dir, tmp_path)
    await _run_until(service, lambda: service.published_step >= 2 and service.dropped_groups)
    assert [v.version for v in service.published] == [1, 2]
    ledger = TrainingLedger(ExperienceStore(tmp_path / "x.db"), "trainer-t")
    assert ledger.consumed_count("trained") == 4
    assert ledger.latest_checkpoint().step == 2
    updates = []
    async for batch in bus.consume(ConsumerSpec(name="probe", subjects=[Subjects.MODEL_UPDATE],
                                                batch=10, fetch_timeout=0.1)):
        updates += [d.event for d in batch]
        break
    assert [u.version for u in updates if isinstance(u, ModelUpdateEvent)] == [1, 2]
    assert all(u.sha256 == AdapterStore(tmp_path / "adapters").get("t", u.version).sha256
               for u in updates)


async def test_restart_resumes_and_consumes_every_rollout_exactly_once(
    tiny_model_dir, tmp_path, tok
) -> None:
    bus = MemoryBus()
    await bus.connect()
    group_a = [_score(tok, "a", j) for j in range(2)]
    for s in group_a:
        await bus.publish(s)
    late = _score(tok, "b", 0)
    await bus.publish(late)  # half of group b: held unacked when the trainer "crashes"
    first = _service(bus, tiny_model_dir, tmp_path, ack_wait=1.0)
    await _run_until(first, lambda: first.published_step >= 1 and late.result.event_id
                     in first._held)
    # the crash: the held rollout was never acked; it comes back after ack_wait.
    # Group a is redelivered too as if its ack had been lost: it must not train again.
    for j, s in enumerate(group_a):
        await bus.publish(s.model_copy(update={"event_id": f"redelivered-{j}"}))
    await bus.publish(_score(tok, "b", 1))
    second = _service(bus, tiny_model_dir, tmp_path, ack_wait=1.0)
    await _run_until(second, lambda: second.published_step >= 2)
    assert second.trainer.step == 2  # resumed at 1, trained b once
    ledger = TrainingLedger(ExperienceStore(tmp_path / "x.db"), "trainer-t")
    assert ledger.consumed_count("trained") == 4
    rows = ledger.store.read("SELECT rollout_id, COUNT(*) FROM training_consumed "
                             "GROUP BY rollout_id HAVING COUNT(*) > 1")
    assert rows == []


async def test_every_step_runs_under_the_compute_lock(tiny_model_dir, tmp_path, tok) -> None:
    import threading

    bus = MemoryBus()
    await bus.connect()
    for j in range(2):
        await bus.publish(_score(tok, "g1", j))
    service = _service(bus, tiny_model_dir, tmp_path)
    lock = threading.RLock()
    service.compute_lock = lock
    held_during_step = []
    step = service.trainer.train_step

    def spying_step(groups):  # type: ignore[no-untyped-def]
        # another thread cannot take the lock while the step runs
        probe = threading.Thread(target=lambda: held_during_step.append(
            not lock.acquire(timeout=0.05) or lock.release()))
        probe.start()
        probe.join()
        return step(groups)

    service.trainer.train_step = spying_step  # type: ignore[method-assign]
    await _run_until(service, lambda: service.published_step >= 1)
    assert held_during_step == [True]


async def test_a_run_tag_keeps_an_earlier_runs_rollouts_out(tiny_model_dir, tmp_path, tok) -> None:
    bus = MemoryBus()
    await bus.connect()

    def tagged(group: str, j: int, run: str) -> ScoreEvent:
        ev = _score(tok, group, j)
        task = ev.result.task.model_copy(update={"metadata": {"run": run}})
        return ev.model_copy(update={"result": ev.result.model_copy(update={"task": task})})

    for j in range(2):  # left unacked by an interrupted earlier run
        await bus.publish(tagged("old", j, "run-1"))
    for j in range(2):
        await bus.publish(tagged("new", j, "run-2"))
    service = _service(bus, tiny_model_dir, tmp_path)
    service.config.run_tag = "run-2"
    await _run_until(service, lambda: service.published_step >= 1)
    await asyncio.sleep(0.2)
    assert service.trainer.step == 1 and service.accepted_groups == 1
    ledger = TrainingLedger(ExperienceStore(tmp_path / "x.db"), "trainer-t")
    assert ledger.consumed_count("trained") == 2  # the two of run-2 only


async def test_no_step_starts_once_stop_is_set(tiny_model_dir, tmp_path, tok) -> None:
    """Three trainable groups arrive together; a stop set by the first step (what
    ``tentalis train --max-steps 1`` does) leaves the other two untrained and unconsumed."""
    bus = MemoryBus()
    await bus.connect()
    for g in ("g1", "g2", "g3"):
        for j in range(2):
            await bus.publish(_score(tok, g, j))
    service = _service(bus, tiny_model_dir, tmp_path)
    stop = asyncio.Event()
    service.on_step = lambda m: stop.set()
    try:
        await asyncio.wait_for(service.run(stop), timeout=60)
    finally:
        service.ledger.store.close()
    assert service.trainer.step == 1
    assert len(service.ready) == 2
    ledger = TrainingLedger(ExperienceStore(tmp_path / "x.db"), "trainer-t")
    assert ledger.consumed_count("trained") == 2
