"""``PromotionGate``: the trainer's side of the reward-hacking guard.

The trainer service shows the gate every rollout it takes in; the gate feeds the
:class:`~tentalis.rewards.guard.RewardHackingGuard` and acts on its verdicts:

* WARNING / HARD_STOP → a :class:`~tentalis.events.GuardEvent` with the reason and the
  numbers, written to the experience store at once and published on ``tentalis.ev.guard``
  (again only when the level or the set of firing signals changes);
* HARD_STOP → promotion is **paused**. The trainer keeps training and checkpointing (the
  rollouts are still consumed exactly once and nothing piles up unacked), and keeps saving
  adapter versions for inspection, but announces none of them: the workers keep serving
  the last adapter promoted before the alarm. The pause is in the store, so it survives a
  trainer restart.

An operator lifts it with :func:`resume_promotion` (``tentalis train --resume-promotion``):
a ``resumed`` GuardEvent in the store and on the bus. The trainer hears it (live, or from
the store at its next save), promotes the newest held version, and the guard starts a new
warm-up on what comes next — the operator has accepted the current distribution.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tentalis.bus.base import Bus
from tentalis.events import Event, GuardEvent, ScoreEvent
from tentalis.rewards.guard import (
    GuardConfig,
    GuardLevel,
    GuardVerdict,
    RewardHackingGuard,
    observation_from_score,
)
from tentalis.store.guard import GuardLedger
from tentalis.store.sqlite import ExperienceStore

log = logging.getLogger(__name__)


class PromotionGate:
    """Guard verdicts → recorded events and a promotion pause for one trainer."""

    def __init__(
        self,
        bus: Bus,
        store: ExperienceStore,
        *,
        trainer_id: str,
        adapter_name: str,
        config: GuardConfig | None = None,
    ) -> None:
        self.bus = bus
        self.ledger = GuardLedger(store)
        self.trainer_id = trainer_id
        self.adapter_name = adapter_name
        self.config = config
        enabled = config is not None and config.enabled
        self.guard = RewardHackingGuard(config) if enabled else None
        self.paused_by: GuardEvent | None = None
        self.emitted: list[GuardEvent] = []
        self._last_key: tuple[str, tuple[str, ...]] | None = None

    @property
    def paused(self) -> bool:
        return self.paused_by is not None

    def restore(self) -> None:
        """Take up a pause recorded in the store (a restart keeps promotion paused)."""
        self.paused_by = self.ledger.pause_state(self.trainer_id)
        if self.paused_by is not None:
            log.warning("trainer %s: promotion stays paused: %s", self.trainer_id,
                        self.paused_by.reason)

    async def observe(self, score: ScoreEvent, length: int, step: int) -> GuardVerdict | None:
        """Show the guard one rollout; returns the verdict when a check ran."""
        if self.guard is None:
            return None
        cfg = self.guard.config
        try:
            obs = observation_from_score(score, length, judge=cfg.judge_component,
                                         cheap=cfg.cheap_component)
        except ValueError as exc:  # a malformed rollout is not evidence of hacking
            log.warning("guard skipped rollout %s: %s", score.result_event_id, exc)
            return None
        verdict = self.guard.observe(obs)
        if verdict is None or verdict.level is GuardLevel.OK:
            if verdict is not None:
                self._last_key = None
            return verdict
        key = (verdict.level.value, tuple(s.name for s in verdict.fired))
        if self.paused or key == self._last_key:
            return verdict  # nothing new to say
        self._last_key = key
        event = GuardEvent(
            trainer_id=self.trainer_id, adapter_name=self.adapter_name,
            level=verdict.level.value,  # type: ignore[arg-type]
            signals=[s.name for s in verdict.fired], reason=verdict.reason,
            numbers=verdict.numbers(), step=step, observations=verdict.observations,
            source=self.trainer_id,
        )
        if verdict.level is GuardLevel.HARD_STOP:
            self.paused_by = event
            log.error("trainer %s: HARD_STOP, promotion paused: %s", self.trainer_id,
                      event.reason)
        else:
            log.warning("trainer %s: guard WARNING: %s", self.trainer_id, event.reason)
        await self._emit(event)
        return verdict

    async def _emit(self, event: GuardEvent) -> None:
        self.emitted.append(event)
        await asyncio.to_thread(self.ledger.record, event)
        try:
            await self.bus.publish(event)
        except Exception as exc:  # the store has it; the bus copy is for live watchers
            log.warning("guard event %s not published: %s", event.event_id, exc)

    def apply(self, event: Event) -> bool:
        """A guard event from the bus; True when it lifted this trainer's pause."""
        if (isinstance(event, GuardEvent) and event.level == "resumed"
                and event.trainer_id == self.trainer_id and self.paused):
            self._lift(event)
            return True
        return False

    def refresh(self) -> bool:
        """Re-read the store (a ``resumed`` missed on the bus); True when it lifted the pause."""
        if self.paused and self.ledger.pause_state(self.trainer_id) is None:
            self._lift(None)
            return True
        return False

    def _lift(self, event: GuardEvent | None) -> None:
        log.warning("trainer %s: promotion resumed%s", self.trainer_id,
                    f" ({event.reason})" if event is not None else "")
        self.paused_by = None
        self._last_key = None
        if self.guard is not None:
            self.guard.reset()

    def health(self) -> dict[str, Any]:
        """Fields for the trainer's health entry (``tentalis status``)."""
        if self.guard is None:
            state = "off"
        elif self.guard.baseline is None:
            state = "warming up"
        else:
            state = self.guard.last.level.value if self.guard.last else "ok"
        out: dict[str, Any] = {"guard": state, "promotion": "paused" if self.paused else "active"}
        if self.paused_by is not None:
            out["promotion_reason"] = self.paused_by.reason
        return out


async def resume_promotion(
    store: ExperienceStore, bus: Bus | None, trainer_id: str, *, by: str = "operator"
) -> tuple[GuardEvent, GuardEvent] | None:
    """Lift ``trainer_id``'s promotion pause: record (and, with a bus, publish) a ``resumed``
    GuardEvent. Returns ``(the HARD_STOP that paused it, the resume)``; None when that
    trainer's promotion is not paused."""
    ledger = GuardLedger(store)
    paused = ledger.pause_state(trainer_id)
    if paused is None:
        return None
    resumed = GuardEvent(
        trainer_id=trainer_id, adapter_name=paused.adapter_name, level="resumed",
        reason=f"promotion resumed by {by}", source=by,
    )
    ledger.record(resumed)
    if bus is not None:
        await bus.publish(resumed)
    return paused, resumed
