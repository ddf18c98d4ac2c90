"""What training consumed, recorded with the checkpoint that used it.

``record_checkpoint`` writes a checkpoint row and marks every rollout that went into it
as consumed — one transaction, after the checkpoint directory itself is safely on disk.
A trainer that restarts resumes from its last *recorded* checkpoint and skips exactly
the rollouts recorded as consumed: each rollout enters the persisted weights once.
Rollouts dropped before training (zero-variance groups under dynamic sampling, unscored
results) are recorded too, with their outcome, so they are not retried forever.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tentalis.events import utcnow
from tentalis.store.sqlite import ExperienceStore


@dataclass(frozen=True)
class CheckpointRecord:
    trainer_id: str
    step: int
    path: str
    adapter_name: str
    adapter_version: int | None
    adapter_sha256: str | None


class TrainingLedger:
    """Checkpoint and consumption bookkeeping on top of the experience store."""

    def __init__(self, store: ExperienceStore, trainer_id: str) -> None:
        self.store = store
        self.trainer_id = trainer_id

    def record_checkpoint(
        self,
        *,
        step: int,
        path: str,
        adapter_name: str,
        adapter_version: int | None,
        adapter_sha256: str | None,
        consumed: Iterable[tuple[str, str]],
        metrics: dict[str, float] | None = None,
    ) -> None:
        """The checkpoint and its ``(rollout_id, outcome)`` pairs, in one transaction."""
        now = utcnow().isoformat()
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO training_checkpoints (trainer_id, step, path,"
                " adapter_name, adapter_version, adapter_sha256, metrics, created_at)"
                " VALUES (:trainer_id, :step, :path, :adapter_name, :adapter_version,"
                " :adapter_sha256, :metrics, :created_at)",
                {"trainer_id": self.trainer_id, "step": step, "path": path,
                 "adapter_name": adapter_name, "adapter_version": adapter_version,
                 "adapter_sha256": adapter_sha256, "metrics": json.dumps(metrics or {}),
                 "created_at": now},
            )  # fmt: skip
            conn.executemany(
                "INSERT OR IGNORE INTO training_consumed (rollout_id, trainer_id, step,"
                " outcome, recorded_at) VALUES (:rollout_id, :trainer_id, :step, :outcome,"
                " :recorded_at)",
                [{"rollout_id": rid, "trainer_id": self.trainer_id, "step": step,
                  "outcome": outcome, "recorded_at": now} for rid, outcome in consumed],
            )  # fmt: skip

    def latest_checkpoint(self) -> CheckpointRecord | None:
        rows = self.store.read(
            "SELECT trainer_id, step, path, adapter_name, adapter_version, adapter_sha256 "
            "FROM training_checkpoints WHERE trainer_id = :trainer_id ORDER BY step DESC LIMIT 1",
            {"trainer_id": self.trainer_id},
        )
        return CheckpointRecord(**dict(rows[0])) if rows else None

    def consumed(self, rollout_ids: Sequence[str]) -> set[str]:
        """Which of ``rollout_ids`` some checkpoint of this trainer already consumed."""
        found: set[str] = set()
        ids = list(rollout_ids)
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.store.read(
                f"SELECT rollout_id FROM training_consumed WHERE trainer_id = ? "
                f"AND rollout_id IN ({marks})",
                (self.trainer_id, *chunk),
            )
            found.update(r[0] for r in rows)
        return found

    def consumed_count(self, outcome: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM training_consumed WHERE trainer_id = ?"
        params: tuple[str, ...] = (self.trainer_id,)
        if outcome is not None:
            sql += " AND outcome = ?"
            params = (*params, outcome)
        return int(self.store.read(sql, params)[0][0])
