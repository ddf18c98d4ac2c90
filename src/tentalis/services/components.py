"""Build each service's component from Settings (the wiring; no logic of its own)."""

from __future__ import annotations

from tentalis.agents.manager import Manager, ManagerConfig
from tentalis.agents.review import LLMReviewer, Reviewer, RuleReviewer
from tentalis.agents.worker import Worker, WorkerConfig
from tentalis.bus.base import Bus
from tentalis.config import Settings
from tentalis.envs import load_environments
from tentalis.inference.base import InferenceClient
from tentalis.rewards.registry import scorer_for
from tentalis.rewards.service import ScorerService
from tentalis.store import ExperienceStore
from tentalis.store.recorder import Recorder


def make_worker(
    bus: Bus, inference: InferenceClient, settings: Settings, worker_id: str | None = None
) -> Worker:
    load_environments()  # the worker looks up its environments' instructions
    return Worker(
        bus,
        inference,
        WorkerConfig(
            worker_id=worker_id or settings.worker_id,
            environments=settings.environments,
            batch_size=settings.inference_max_batch,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            max_deliver=settings.bus_max_deliver,
            ack_wait=settings.bus_ack_wait_seconds,
            seed=settings.tentalis_seed,
            follow_adapter=settings.worker_adapter,
        ),
    )


def make_reviewer(settings: Settings, inference: InferenceClient | None) -> Reviewer:
    if settings.manager_review == "llm" and inference is not None:
        return LLMReviewer(inference)
    return RuleReviewer()


def make_manager(
    bus: Bus, settings: Settings, inference: InferenceClient | None = None
) -> Manager:
    return Manager(
        bus,
        make_reviewer(settings, inference),
        ManagerConfig(
            manager_id=settings.manager_id,
            task_timeout=settings.task_timeout_seconds,
            max_in_flight=settings.manager_max_in_flight,
        ),
        inference=inference,
    )


def make_scorer(bus: Bus, settings: Settings, service_id: str = "scorer-01") -> ScorerService:
    load_environments()  # the scorers are found through the environments' registrations
    return ScorerService(
        bus, scorer_for, service_id=service_id, max_deliver=settings.bus_max_deliver
    )


def make_recorder(settings: Settings) -> Recorder:
    return Recorder(ExperienceStore(settings.store_path), max_deliver=settings.bus_max_deliver)
