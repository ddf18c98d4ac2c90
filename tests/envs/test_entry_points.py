"""An environment from someone else's package, declared in the ``tentalis.environments``
entry-point group, is found by ``load_environments()``; its tasks run through the loop
(manager → worker → scorer → review) and ``tentalis status`` shows it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.config import load_settings
from tentalis.demo.loop import run_tasks
from tentalis.envs import get_environment, load_environments
from tentalis.envs import registry as env_registry
from tentalis.errors import ConfigError
from tentalis.inference.local import LocalInference
from tentalis.rewards import registry as scorer_registry
from tentalis.rewards import scorer_for
from tentalis.services.processes import run_service

PLUGIN = '''\
"""A tiny environment a user ships in their own package."""

import random

from tentalis.envs import Environment, TaskSpec, register_environment
from tentalis.rewards import StepScores, register_scorer


class DiceTasks(Environment):
    name = "dice"
    system_prompt = "Add the dice. End with: Answer: <sum>"

    def generate(self, n, split="train", seed=0, **options):
        rng = random.Random(f"dice:{split}:{seed}")
        out = []
        for _ in range(n):
            a, b = rng.randint(1, 6), rng.randint(1, 6)
            out.append(TaskSpec(f"Dice show {a} and {b}. Sum?", str(a + b), "dice",
                                {"dice": [a, b]}, split))
        return out


class DiceScorer:
    name = "dice"

    async def score(self, task, result):
        right = (result.final_answer or "").strip() == task.answer
        return StepScores([0.5] * len(result.steps), 1.0 if right else 0.0, {"right": right})


def register():
    register_environment("dice", DiceTasks)
    register_scorer("dice", "default", DiceScorer)
'''


def install_plugin(site: Path, entry_point: str = "tentalis_dice_env:register") -> Path:
    """Write the plugin module and its ``.dist-info`` (METADATA, entry_points.txt) into
    ``site``, as pip would install it."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "tentalis_dice_env.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "tentalis_dice_env-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tentalis-dice-env\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[tentalis.environments]\ndice = {entry_point}\n", encoding="utf-8")
    return site


@pytest.fixture
def registries(monkeypatch):  # type: ignore[no-untyped-def]
    """The registries as the session left them, restored after the test (the plugin's
    registrations do not leak into other tests)."""
    monkeypatch.setattr(env_registry, "_FACTORIES", dict(env_registry._FACTORIES))
    monkeypatch.setattr(env_registry, "_entry_points_loaded",
                        set(env_registry._entry_points_loaded))
    monkeypatch.setattr(scorer_registry, "_REGISTRY",
                        {k: dict(v) for k, v in scorer_registry._REGISTRY.items()})
    env_registry._cached.cache_clear()
    yield
    env_registry._cached.cache_clear()
    sys.modules.pop("tentalis_dice_env", None)


@pytest.fixture
def plugin(tmp_path, monkeypatch, registries):  # type: ignore[no-untyped-def]
    site = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    return site


def test_the_entry_point_registers_the_environment_and_its_scorer(plugin) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError, match="known:"):
        get_environment("dice")
    names = load_environments()
    assert "dice" in names and {"math", "terminal", "swe", "gui"} <= set(names)
    tasks = get_environment("dice").generate(3)
    assert [t.environment for t in tasks] == ["dice"] * 3
    assert scorer_for("dice").name == "dice"
    assert load_environments() == names  # idempotent


def test_a_broken_entry_point_is_named_in_the_error(tmp_path, monkeypatch, registries) -> None:  # type: ignore[no-untyped-def]
    site = install_plugin(tmp_path / "site", entry_point="tentalis_dice_env:no_such_function")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError, match=r"entry point 'dice'.*no_such_function"):
        load_environments()


@pytest.mark.nats
async def test_plugin_tasks_run_through_the_loop_and_status_shows_it(  # type: ignore[no-untyped-def]
    plugin, tmp_path, monkeypatch, tiny_model_dir
) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    for key in ("TENTALIS_CONFIG", "LLM_MODEL", "NATS_URL", "WORKER_ENVIRONMENTS"):
        monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("TENTALIS_HOME", str(home))
    settings = load_settings(
        nats_url=server.url, nats_embedded="never", llm_model=str(tiny_model_dir),
        worker_environments="dice", worker_id="dice-worker", max_new_tokens=16,
        task_timeout_seconds=60, inference_max_batch=4, manager_max_in_flight=8)
    bus = NatsBus(server.url)
    await bus.connect()
    stop = asyncio.Event()
    # a worker process's service loop: it heartbeats the environments it answers
    worker = asyncio.create_task(run_service("worker", settings, stop))
    try:
        load_environments()
        tasks = [s.to_task_event() for s in get_environment("dice").generate(4, "heldout")]
        inference = LocalInference(tiny_model_dir, max_batch=4)
        try:
            report = await run_tasks(bus, inference, settings, tasks)
        finally:
            await inference.close()
        assert report.n == 4 and report.timed_out == 0
        for o in report.outcomes:
            assert o.score is not None and o.score.environment == "dice"
            assert o.score.scorer == "dice" and o.score.error is None
            assert o.feedback is not None

        deadline = time.monotonic() + 60
        while "dice-worker" not in await bus.get_health():
            assert time.monotonic() < deadline, "the worker never sent a heartbeat"
            await asyncio.sleep(0.1)
        env = {**os.environ, "NATS_URL": server.url, "NATS_EMBEDDED": "never",
               "TENTALIS_HOME": str(home), "COLUMNS": "250",
               "PYTHONPATH": os.pathsep.join([str(plugin), *sys.path])}
        out = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "tentalis", "status"],
            capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "envs: dice" in out.stdout, out.stdout  # the worker's row
        listed = next(line for line in out.stdout.splitlines()
                      if line.startswith("environments:"))
        assert "dice" in listed and "math" in listed
    finally:
        stop.set()
        await asyncio.wait_for(worker, 60)
        await bus.close()
        server.stop()
