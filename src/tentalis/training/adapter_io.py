"""The trainer's LoRA weights in and out: what an inference worker loads, what a checkpoint
keeps. peft names, no adapter suffix; tensors only (safetensors), never pickle.

Atomic placement is the caller's: :class:`~tentalis.training.checkpoint.CheckpointManager`
writes into a temporary directory and renames it; the adapter store
(:mod:`tentalis.inference.adapters`) versions an adapter and records its sha256.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from tentalis.errors import TrainingError


def save_adapter(model: Any, directory: str | os.PathLike[str]) -> Path:
    """Write only ``model``'s LoRA adapter (``adapter_config.json`` +
    ``adapter_model.safetensors``) to ``directory``."""
    directory = Path(directory)
    model.save_pretrained(str(directory), safe_serialization=True)
    return directory


def adapter_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """``model``'s LoRA weights, cloned to CPU."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model)
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def load_adapter_state_dict(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Load LoRA weights saved by :func:`adapter_state_dict` / :func:`save_adapter` into
    ``model``; the names must be exactly ``model``'s (same rank and target modules)."""
    from peft import set_peft_model_state_dict

    expected = set(adapter_state_dict(model))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise TrainingError(
            f"adapter weights do not match this trainer's LoRA (missing {missing[:3]}, "
            f"unexpected {extra[:3]}); was it trained with another lora_r / target modules?"
        )
    set_peft_model_state_dict(model, state)
