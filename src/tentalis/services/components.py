"""Build each service's component from Settings (the wiring; no logic of its own)."""

from __future__ import annotations

from tentalis.agents.manager import Manager
from tentalis.agents.review import LLMReviewer, Reviewer, RuleReviewer
from tentalis.agents.worker import Worker
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
    config = settings.worker
    if worker_id is not None:
        config = config.model_copy(update={"worker_id": worker_id})
    return Worker(bus, inference, config)


def make_reviewer(settings: Settings, inference: InferenceClient | None) -> Reviewer:
    if settings.manager.review == "llm" and inference is not None:
        return LLMReviewer(inference)
    return RuleReviewer()


def make_manager(
    bus: Bus, settings: Settings, inference: InferenceClient | None = None
) -> Manager:
    return Manager(bus, make_reviewer(settings, inference), settings.manager, inference=inference)


def make_scorer(bus: Bus, settings: Settings, service_id: str = "scorer-01") -> ScorerService:
    load_environments()  # the scorers are found through the environments' registrations
    return ScorerService(
        bus, scorer_for, service_id=service_id, max_deliver=settings.bus.max_deliver
    )


def make_recorder(settings: Settings) -> Recorder:
    return Recorder(ExperienceStore(settings.store_path), max_deliver=settings.bus.max_deliver)
