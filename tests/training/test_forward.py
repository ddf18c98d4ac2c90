"""ForwardEngine on the tiny random Llama: the staged shared-prefix pass equals the full pass,
the executed-token count and FLOPs by hand, and the LM-head check."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tentalis.errors import TrainingError
from tentalis.models.kv import MIN_SHARED_PREFIX
from tentalis.models.tiny import build_tiny_llama
from tentalis.training import Rollout, TrainConfig
from tentalis.training.forward import ForwardEngine, check_plain_lm_head
from tentalis.training.trainer import PolicyTrainer


@pytest.fixture(scope="module")
def trainer(tmp_path_factory) -> PolicyTrainer:
    model_dir = build_tiny_llama(tmp_path_factory.mktemp("tiny"))
    return PolicyTrainer(model_dir, TrainConfig(seed=0, dtype="float32", output_dir="unused"))


def rows() -> list[Rollout]:
    system = list(range(100, 100 + MIN_SHARED_PREFIX + 4))  # 20 shared tokens
    a, b = [*system, 7, 8, 9], [*system, 11]
    return [
        Rollout("r0", "a", "a", a, [50, 51, 52], 1.0),
        Rollout("r1", "a", "a", a, [53], 0.0),
        Rollout("r2", "b", "b", b, [54, 55], 1.0),
    ]


def engine_of(trainer: PolicyTrainer, share: bool) -> ForwardEngine:
    return ForwardEngine(trainer.model, device=trainer.device, dtype=trainer.dtype,
                         pad_id=trainer.engine.pad_id, share_prefix=share)


def test_staged_pass_gives_the_full_pass_logprobs_and_counts_what_ran(trainer) -> None:
    rs = rows()
    zeros = torch.zeros(3, 3)
    staged, full = engine_of(trainer, True), engine_of(trainer, False)
    mb = staged.collate(rs, [0, 1, 2], zeros, zeros)
    assert mb.shared_prefix == 20
    with torch.no_grad():
        a, b = staged.forward(mb), full.forward(mb)
    assert a.ref_logp is None
    valid = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=torch.bool)
    torch.testing.assert_close(a.logp[valid], b.logp[valid], atol=1e-5, rtol=1e-5)
    # full: every token of every row; staged: the 20-token prefix once, each distinct
    # prompt's rest once (3 + 1), each completion but its last token (2 + 0 + 1)
    assert full.executed_tokens(rs, [0, 1, 2], mb) == 26 + 24 + 23
    assert staged.executed_tokens(rs, [0, 1, 2], mb) == 20 + 4 + 3


def test_reference_logprobs_are_the_base_models(trainer) -> None:
    rs = rows()
    zeros = torch.zeros(3, 3)
    engine = trainer.engine
    mb = engine.collate(rs, [0, 1, 2], zeros, zeros)
    with torch.no_grad():
        for p in trainer.trainable:  # a LoRA that changes the output
            p.add_(0.05)
        out = engine.forward(mb, reference=True)
        with trainer.model.disable_adapter():
            base = engine.forward(mb).logp
        for p in trainer.trainable:
            p.sub_(0.05)
    assert out.ref_logp is not None
    torch.testing.assert_close(out.ref_logp, base)
    assert not torch.allclose(out.logp, base)


def test_forward_flops_by_hand(trainer) -> None:
    e = trainer.engine
    assert e.forward_flops(10, 3) == 2.0 * (e.n_body_params * 10 + e.n_head_params * 3)
    assert trainer.step_flops(10, 3) == 2 * e.forward_flops(10, 3)  # forward + backward


def test_models_with_scaled_logits_are_refused() -> None:
    check_plain_lm_head(SimpleNamespace(config=SimpleNamespace()))
    with pytest.raises(TrainingError, match="final_logit_softcapping"):
        check_plain_lm_head(SimpleNamespace(config=SimpleNamespace(final_logit_softcapping=30.0)))
