"""Fixtures for inference tests: LoRA adapters for the tiny model, a LocalInference."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tentalis.inference.local import LocalInference


def make_lora(model_dir: Path, out: Path, seed: int, r: int = 4) -> Path:
    """A random, non-zero LoRA adapter for ``model_dir`` (so it changes the outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(
            r=r,
            lora_alpha=16,
            target_modules=["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj"],
            init_lora_weights=False,  # random A and B: a visible, deterministic change
        )
        with warnings.catch_warnings():  # peft probes a property transformers 5 deprecated
            warnings.simplefilter("ignore", FutureWarning)
            get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def lora_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loras")
    dirs = {
        name: make_lora(tiny_model_dir, root / name, seed)
        for name, seed in (("a1", 1), ("a2", 2), ("b", 3))
    }
    dirs["r8"] = make_lora(tiny_model_dir, root / "r8", 4, r=8)  # another shape
    return dirs


@pytest.fixture
def llm(tiny_model_dir: Path) -> Iterator[LocalInference]:
    """float32: these tests compare numbers across batch shapes and code paths exactly."""
    client = LocalInference(tiny_model_dir, device="cpu", dtype="float32", max_batch=8,
                            model_name="tiny")
    yield client
    client._batcher.close()
