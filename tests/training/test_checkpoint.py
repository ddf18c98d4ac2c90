"""Atomic checkpoints: crash at any point, resume from the last complete one, same result."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from tentalis.errors import TrainingError
from tentalis.models.tiny import build_tiny_llama
from tentalis.training import CheckpointManager, PolicyTrainer, Rollout, TrainConfig, group_by
from tentalis.training import checkpoint as checkpoint_module
from tentalis.training.checkpoint import optimizer_from_tensors, optimizer_to_tensors


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


def batch(seed: int) -> list:
    rng = random.Random(seed)
    return group_by(
        Rollout(
            f"r{seed}-{i}",
            f"g{i // 4}",
            "t",
            [rng.randrange(3, 500) for _ in range(4)],
            [rng.randrange(3, 500) for _ in range(5 + i % 3)],
            float(i % 2),
        )
        for i in range(8)
    )


def make_trainer(model_dir, **kw) -> PolicyTrainer:
    cfg = TrainConfig(output_dir="unused", learning_rate=5e-3, micro_batch_size=4, **kw)
    return PolicyTrainer(model_dir, cfg, peak_flops=1e9)


def assert_same_state(a: PolicyTrainer, b: PolicyTrainer) -> None:
    sa, sb = a.adapter_state_dict(), b.adapter_state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    oa, ob = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    assert oa["state"].keys() == ob["state"].keys()
    for pid, state in oa["state"].items():
        for name, value in state.items():
            assert torch.equal(value, ob["state"][pid][name]), (pid, name)
    assert a.step == b.step


def test_save_restore_resume_equals_uninterrupted_run(model_dir, tmp_path) -> None:
    # Uninterrupted: steps 1, 2, 3.
    straight = make_trainer(model_dir)
    manager = CheckpointManager(tmp_path / "ckpt")
    straight.train_step(batch(1))
    straight.train_step(batch(2))
    path = manager.save(straight, extra={"metrics_lines": 2})
    assert path.name == "step-000002" and manager.latest() == path
    rng_after_save = (torch.rand(3), random.random(), np.random.rand())
    expected = straight.train_step(batch(3))

    straight_at_2 = make_trainer(model_dir)  # a reference copy of the state at step 2
    straight_at_2.train_step(batch(1))
    straight_at_2.train_step(batch(2))

    # Crashed after step 2: a fresh process restores and runs step 3.
    resumed = make_trainer(model_dir, seed=123)  # different init: restore must overwrite it
    state = CheckpointManager(tmp_path / "ckpt").resume(resumed)
    assert state is not None and state["step"] == 2 and state["extra"] == {"metrics_lines": 2}
    assert_same_state(resumed, straight_at_2)
    t, py, npy = torch.rand(3), random.random(), np.random.rand()  # RNG streams continue
    assert torch.equal(t, rng_after_save[0])
    assert (py, npy) == rng_after_save[1:]
    got = resumed.train_step(batch(3))
    assert got.step == expected.step == 3
    assert got.loss == pytest.approx(expected.loss, abs=1e-6)
    assert got.grad_norm == pytest.approx(expected.grad_norm, rel=1e-5)
    for k, v in straight.adapter_state_dict().items():
        torch.testing.assert_close(resumed.adapter_state_dict()[k], v, atol=1e-6, rtol=1e-5)


def test_partial_temp_dir_is_ignored_and_cleaned(model_dir, tmp_path) -> None:
    trainer = make_trainer(model_dir)
    trainer.train_step(batch(1))
    root = tmp_path / "ckpt"
    good = CheckpointManager(root).save(trainer)
    # A save killed half-way: its temp dir has some files but was never renamed.
    partial = root / ".tmp-step-000002-deadbeef"
    (partial / "adapter").mkdir(parents=True)
    (partial / "optimizer.safetensors").write_bytes(b"\x00" * 10)
    # A step dir without trainer_state.json is not complete either (never returned).
    (root / "step-000009").mkdir()
    manager = CheckpointManager(root)  # start-up cleans the leftovers
    assert not partial.exists()
    assert manager.latest() == good
    assert [p.name for p in manager.checkpoints()] == ["step-000001"]


def test_crash_mid_save_keeps_previous_checkpoint(model_dir, tmp_path, monkeypatch) -> None:
    trainer = make_trainer(model_dir)
    trainer.train_step(batch(1))
    root = tmp_path / "ckpt"
    manager = CheckpointManager(root)
    first = manager.save(trainer)
    trainer.train_step(batch(2))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        manager.save(trainer)
    monkeypatch.undo()
    assert list(root.glob(".tmp-*"))  # the interrupted save left its temp dir
    assert manager.latest() == first
    assert (root / "latest").read_text().strip() == "step-000001"

    restarted = CheckpointManager(root)
    assert not list(root.glob(".tmp-*"))
    fresh = make_trainer(model_dir)
    assert restarted.restore(fresh, restarted.latest())["step"] == 1
    assert fresh.step == 1


def test_keep_last_and_latest_pointer(model_dir, tmp_path) -> None:
    trainer = make_trainer(model_dir)
    manager = CheckpointManager(tmp_path, keep_last=2)
    for seed in range(4):
        trainer.train_step(batch(seed))
        manager.save(trainer)
    assert [p.name for p in manager.checkpoints()] == ["step-000003", "step-000004"]
    assert manager.latest().name == "step-000004"
    # A garbled pointer falls back to the highest complete step.
    (tmp_path / "latest").write_text("step-999999\n")
    assert manager.latest().name == "step-000004"
    # Saving the same step again replaces it atomically.
    again = manager.save(trainer)
    assert again.name == "step-000004" and (again / "trainer_state.json").is_file()
    files = {p.name for p in again.iterdir()}
    assert files == {
        "adapter", "optimizer.safetensors", "optimizer.json", "rng.safetensors",
        "trainer_state.json",
    }  # fmt: skip
    assert not any(p.suffix in {".pt", ".pkl", ".bin"} for p in again.rglob("*"))
    state = json.loads((again / "trainer_state.json").read_text())
    assert state["config"]["lora_r"] == 16 and state["adapter_name"] == "policy"


def test_restore_refuses_a_different_lora_shape(model_dir, tmp_path) -> None:
    trainer = make_trainer(model_dir)
    path = CheckpointManager(tmp_path).save(trainer)
    with pytest.raises(TrainingError, match="lora_r"):
        CheckpointManager(tmp_path).restore(make_trainer(model_dir, lora_r=4), path)
    with pytest.raises(TrainingError, match="not a complete checkpoint"):
        CheckpointManager(tmp_path).restore(trainer, tmp_path / "nowhere")


def test_optimizer_state_round_trips_without_pickle() -> None:
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=1e-3, betas=(0.8, 0.95))
    p.grad = torch.randn(3, 2)
    opt.step()
    tensors, rest = optimizer_to_tensors(opt.state_dict())
    json.dumps(rest)  # the non-tensor part is plain JSON
    back = optimizer_from_tensors(tensors, json.loads(json.dumps(rest)))
    opt2 = torch.optim.AdamW([torch.nn.Parameter(p.detach().clone())], lr=1.0)
    opt2.load_state_dict(back)
    assert opt2.param_groups[0]["betas"] == (0.8, 0.95) and opt2.param_groups[0]["lr"] == 1e-3
    for name in ("step", "exp_avg", "exp_avg_sq"):
        assert torch.equal(opt2.state_dict()["state"][0][name], opt.state_dict()["state"][0][name])
