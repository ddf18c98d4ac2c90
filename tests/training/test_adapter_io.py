"""LoRA weights out and back in; a mismatched adapter is refused with what to check."""

from __future__ import annotations

import pytest
import torch

from tentalis.errors import TrainingError
from tentalis.models.tiny import build_tiny_llama
from tentalis.training import TrainConfig
from tentalis.training.adapter_io import adapter_state_dict, load_adapter_state_dict, save_adapter
from tentalis.training.trainer import PolicyTrainer


def test_state_dict_round_trip_and_files(tmp_path) -> None:
    model_dir = build_tiny_llama(tmp_path / "tiny")
    cfg = TrainConfig(seed=0, dtype="float32", output_dir="unused")
    a, b = PolicyTrainer(model_dir, cfg).model, PolicyTrainer(model_dir, cfg).model
    with torch.no_grad():
        for p in a.parameters():
            if p.requires_grad:
                p.add_(0.01)
    state = adapter_state_dict(a)
    assert state and all(v.device.type == "cpu" for v in state.values())
    load_adapter_state_dict(b, state)
    for name, value in adapter_state_dict(b).items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0)
    out = save_adapter(a, tmp_path / "adapter")
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    with pytest.raises(TrainingError, match="lora_r"):
        load_adapter_state_dict(b, dict(list(state.items())[1:]))
