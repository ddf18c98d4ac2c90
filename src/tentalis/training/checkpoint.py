"""Atomic training checkpoints: a crash never leaves a checkpoint that looks complete but isn't.

Layout under ``root``::

    step-000123/
        adapter/                  adapter_config.json + adapter_model.safetensors (loadable
                                  by an inference worker as is)
        optimizer.safetensors     every optimiser state tensor, keyed "state.<param>.<name>"
        optimizer.json            the rest: param_groups and non-tensor state
        rng.safetensors           torch CPU (and CUDA) generator states
        trainer_state.json        format, step, python/numpy RNG, config, base model, extra
    latest                        text file naming the newest complete step directory
    .tmp-step-000124-<hex>/       a save in progress (or interrupted: removed on next start)

A save writes everything into a fresh temporary directory next to the final one, fsyncs each
file and the directory, ``os.replace``-s it to ``step-NNNNNN`` (atomic on POSIX), fsyncs the
root, then rewrites ``latest`` the same way (temp file, fsync, replace). A process killed at
any point leaves either the previous checkpoint or the new one, plus at most a ``.tmp-*``
directory that :meth:`CheckpointManager.latest` never returns and the next manager removes.
No pickle anywhere: tensors go to safetensors, everything else to JSON.

One writer per root: two processes saving into the same root at once are not supported.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from tentalis.durable import fsync_dir, fsync_tree
from tentalis.errors import TrainingError

if TYPE_CHECKING:
    from tentalis.training.trainer import PolicyTrainer

FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d{6,})$")
# Config fields that must match for a checkpoint to load into a trainer.
_SHAPE_FIELDS = ("lora_r", "lora_alpha", "lora_target_modules")








def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True), encoding="utf-8")


# --------------------------------------------------------------------------- optimiser


def optimizer_to_tensors(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """Split a torch optimiser ``state_dict`` into (tensors, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, dict[str, Any]] = {}
    for pid, state in state_dict["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                other.setdefault(str(pid), {})[name] = value
    for group in state_dict["param_groups"]:
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                raise TrainingError(f"optimizer param_group['{key}'] is a tensor; not supported")
    return tensors, {"param_groups": state_dict["param_groups"], "state": other}


def optimizer_from_tensors(tensors: dict[str, torch.Tensor], rest: dict) -> dict[str, Any]:
    """Inverse of :func:`optimizer_to_tensors`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in rest["state"].items():
        state.setdefault(int(pid), {}).update(values)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
        for g in rest["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


# --------------------------------------------------------------------------- RNG


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG state: torch generators as tensors, python/numpy as JSON."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda.{i}"] = s
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return tensors, {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def restore_rng(tensors: dict[str, torch.Tensor], states: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# --------------------------------------------------------------------------- manager


class CheckpointManager:
    """Atomic checkpoints of a :class:`PolicyTrainer` under ``root``, newest ``keep_last`` kept.

    >>> ckpt = CheckpointManager(out / "checkpoints", keep_last=3)   # doctest: +SKIP
    >>> state = ckpt.resume(trainer)          # restore the newest complete one, if any
    >>> ...; ckpt.save(trainer, extra={"metrics_lines": logger.lines})
    """

    def __init__(self, root: str | os.PathLike[str], *, keep_last: int = 3) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be ≥ 1, got {keep_last}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep_last = keep_last
        self.cleanup()

    def cleanup(self) -> list[Path]:
        """Remove leftovers of interrupted saves (``.tmp-*``); returns what was removed."""
        removed = [p for p in self.root.glob(".tmp-*")]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(True)
        return removed

    def checkpoints(self) -> list[Path]:
        """Complete checkpoint directories, oldest first."""
        found = [
            (int(m.group(1)), p)
            for p in self.root.iterdir()
            if (m := _STEP_DIR.match(p.name)) and (p / "trainer_state.json").is_file()
        ]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The newest complete checkpoint: the one ``latest`` names, else the highest step."""
        pointer = self.root / "latest"
        if pointer.is_file():
            target = self.root / pointer.read_text(encoding="utf-8").strip()
            if _STEP_DIR.match(target.name) and (target / "trainer_state.json").is_file():
                return target
        found = self.checkpoints()
        return found[-1] if found else None

    def save(self, trainer: PolicyTrainer, *, extra: dict[str, Any] | None = None) -> Path:
        """Checkpoint ``trainer`` as ``step-<trainer.step>``; returns its directory.

        ``extra`` (JSON-able) is stored in ``trainer_state.json`` and returned by
        :meth:`restore`: e.g. the metrics log line count, an adapter version, a ledger cursor.
        """
        name = f"step-{trainer.step:06d}"
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        trainer.save_adapter(tmp / "adapter")
        opt_tensors, opt_rest = optimizer_to_tensors(trainer.optimizer.state_dict())
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        _write_json(tmp / "optimizer.json", opt_rest)
        rng_tensors, rng_rest = capture_rng()
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        _write_json(
            tmp / "trainer_state.json",
            {
                "format": FORMAT_VERSION,
                "step": trainer.step,
                "base_model": trainer.base_model_name,
                "adapter_name": trainer.config.adapter_name,
                "config": trainer.config.model_dump(mode="json"),
                "rng": rng_rest,
                "extra": extra or {},
            },
        )
        fsync_tree(tmp)
        final = self.root / name
        if final.exists():  # re-saving the same step: move the old one aside first
            trash = self.root / f".tmp-old-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(self.root)
        self._point_latest(name)
        self.prune()
        return final

    def _point_latest(self, name: str) -> None:
        tmp = self.root / f".tmp-latest-{uuid.uuid4().hex[:8]}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / "latest")
        fsync_dir(self.root)

    def prune(self) -> list[Path]:
        """Delete all but the newest ``keep_last`` checkpoints (never the ``latest`` one)."""
        keep = self.latest()
        old = self.checkpoints()[: -self.keep_last]
        removed = [p for p in old if p != keep]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed

    def restore(self, trainer: PolicyTrainer, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Load adapter, optimiser, RNG and step from checkpoint ``path`` into ``trainer``.

        Returns the stored trainer state (``step``, ``config``, ``extra``, …). Raises
        :class:`TrainingError` when the checkpoint is incomplete or its LoRA shape differs.
        """
        path = Path(path)
        state_file = path / "trainer_state.json"
        if not state_file.is_file():
            raise TrainingError(f"{path} is not a complete checkpoint (no trainer_state.json)")
        state = json.loads(state_file.read_text(encoding="utf-8"))
        if state.get("format") != FORMAT_VERSION:
            raise TrainingError(f"{path}: checkpoint format {state.get('format')} unsupported")
        saved, current = state["config"], trainer.config.model_dump(mode="json")
        diff = [k for k in _SHAPE_FIELDS if saved.get(k) != current.get(k)]
        if diff:
            raise TrainingError(
                f"checkpoint {path} was trained with different LoRA settings ({', '.join(diff)}"
                f": {[saved.get(k) for k in diff]}); use the same config to resume"
            )
        adapter = load_file(str(path / "adapter" / "adapter_model.safetensors"))
        trainer.load_adapter_state_dict(adapter)
        rest = json.loads((path / "optimizer.json").read_text(encoding="utf-8"))
        opt = optimizer_from_tensors(load_file(str(path / "optimizer.safetensors")), rest)
        trainer.optimizer.load_state_dict(opt)
        restore_rng(load_file(str(path / "rng.safetensors")), state["rng"])
        trainer.step = int(state["step"])
        return state

    def resume(self, trainer: PolicyTrainer) -> dict[str, Any] | None:
        """Restore the newest complete checkpoint into ``trainer``; None when there is none."""
        path = self.latest()
        return None if path is None else self.restore(trainer, path)
