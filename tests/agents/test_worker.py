from __future__ import annotations

import asyncio

from tentalis.agents.worker import Worker, WorkerConfig
from tentalis.events import ResultEvent, SessionEvent, Subjects, TaskEvent, derived_id


async def _run_worker(bus, inference, config, until):  # type: ignore[no-untyped-def]
    worker = Worker(bus, inference, config)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(until(worker), 5.0)
    finally:
        stop.set()
        task.cancel()
    return worker


async def _wait(pred) -> None:  # type: ignore[no-untyped-def]
    while not pred():
        await asyncio.sleep(0.01)


async def test_worker_answers_a_batch_with_derived_ids(
    memory_bus, scripted_inference, collect_events
) -> None:
    inference = scripted_inference(lambda r: "<step>2 + 3 = 5</step>\nAnswer: 5")
    tasks = [TaskEvent(prompt=f"What is 2 + {i}?", answer=str(2 + i)) for i in range(3)]
    for t in tasks:
        await memory_bus.publish(t)
    await _run_worker(memory_bus, inference, WorkerConfig(batch_size=8),
                      lambda w: _wait(lambda: w.processed == 3))
    events = await collect_events(memory_bus, [Subjects.RESULTS_ALL, Subjects.SESSION], 6)
    results = [e for e in events if isinstance(e, ResultEvent)]
    sessions = [e for e in events if isinstance(e, SessionEvent)]
    assert len(results) == 3 and len(sessions) == 3
    by_task = {r.task_id: r for r in results}
    for t in tasks:
        r = by_task[t.task_id]
        assert r.event_id == derived_id(t.event_id, "result")
        assert r.steps == ["2 + 3 = 5"] and r.final_answer == "5" and r.parse_status == "ok"
        assert r.task.answer == t.answer
    assert inference.calls == 1  # one generation call for the whole batch


async def test_the_model_never_sees_the_ground_truth(memory_bus, scripted_inference) -> None:
    inference = scripted_inference()
    await memory_bus.publish(TaskEvent(prompt="What is 6 × 7?", answer="SECRET-42"))
    await _run_worker(memory_bus, inference, WorkerConfig(),
                      lambda w: _wait(lambda: w.processed == 1))
    [request] = inference.requests
    assert request.messages[-1]["content"] == "What is 6 × 7?"
    assert all("SECRET-42" not in m["content"] for m in request.messages)


async def test_result_without_steps_is_recorded_not_dropped(
    memory_bus, scripted_inference, collect_events
) -> None:
    inference = scripted_inference(lambda r: "I think it is seven.")
    await memory_bus.publish(TaskEvent(prompt="What is 3 + 4?", answer="7"))
    await _run_worker(memory_bus, inference, WorkerConfig(),
                      lambda w: _wait(lambda: w.processed == 1))
    [result] = await collect_events(memory_bus, [Subjects.RESULTS_ALL], 1)
    assert result.parse_status in ("no_steps", "no_answer")
    assert result.steps == [] and result.raw_text == "I think it is seven."


async def test_inference_failure_retries_then_records_the_failure(
    memory_bus, scripted_inference, collect_events) -> None:
    inference = scripted_inference(fail_times=10)  # always fails within max_deliver
    await memory_bus.publish(TaskEvent(prompt="What is 1 + 1?", answer="2"))
    config = WorkerConfig(max_deliver=2, ack_wait=5.0)
    worker = Worker(memory_bus, inference, config)
    spec = worker.consumer_spec("math")
    deliveries = 0
    async for batch in memory_bus.consume(spec):
        deliveries += 1
        # nak delay is 2 s after the first failure: take the redelivery sooner in the test
        await worker.handle_batch(batch)
        if worker.failed:
            break
    assert deliveries == 2 and worker.failed == 1
    [result] = await collect_events(memory_bus, [Subjects.RESULTS_ALL], 1)
    assert result.parse_status == "error" and "scripted failure" in (result.error or "")


async def test_samples_of_one_group_get_distinct_reproducible_seeds(
    memory_bus, scripted_inference
) -> None:
    inference = scripted_inference()
    group = [TaskEvent(prompt="What is 2 + 2?", answer="4", group_id="g", sample_index=j)
             for j in range(4)]
    for t in group:
        await memory_bus.publish(t)
    await _run_worker(memory_bus, inference, WorkerConfig(seed=7),
                      lambda w: _wait(lambda: w.processed == 4))
    seeds = [r.seed for r in inference.requests]
    assert len(set(seeds)) == 4 and all(isinstance(s, int) for s in seeds)
    again = Worker(memory_bus, scripted_inference(), WorkerConfig(seed=7))
    assert sorted(again._seed_for(t) for t in group) == sorted(seeds)


async def test_worker_follows_only_its_adapter_and_its_target(memory_bus, scripted_inference,
                                                              tmp_path) -> None:
    from tentalis.events import ModelUpdateEvent
    from tentalis.inference.adapters import adapter_sha256

    d = tmp_path / "v1"
    d.mkdir()
    (d / "adapter_config.json").write_text("{}")
    (d / "adapter_model.safetensors").write_bytes(b"weights")
    sha = adapter_sha256(d)
    inference = scripted_inference()
    worker = Worker(memory_bus, inference, WorkerConfig(worker_id="w1", follow_adapter="math"))
    updates = [
        ModelUpdateEvent(adapter_name="other", version=9, sha256=sha, path=str(d)),
        ModelUpdateEvent(adapter_name="math", version=1, sha256=sha, path=str(d),
                         target_worker="w2"),
        ModelUpdateEvent(adapter_name="math", version=2, sha256="0" * 64, path=str(d)),
    ]
    for u in updates:
        await memory_bus.publish(u)
    async for batch in memory_bus.consume(worker.updates_spec()):
        await worker.handle_updates(batch)
        break
    # not its adapter, not its target, a bad checksum: nothing loaded
    assert inference.adapters() == [] and worker.adapter is None
    assert worker.rejected_updates == 1
    good = ModelUpdateEvent(adapter_name="math", version=3, sha256=sha, path=str(d))
    await worker.apply_update(good)
    assert inference.adapters() == ["math"] and worker.adapter_version == 3
