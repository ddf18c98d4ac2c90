"""Our losses against TRL's GRPO loss on identical tensors (skipped when TRL is absent).

TRL computes its loss only inside ``GRPOTrainer._compute_loss(model, inputs)``, which needs
a trainer. We build one with ``object.__new__(GRPOTrainer)`` (no ``__init__``: no model, no
dataset, no accelerate state) and set only the attributes ``_compute_loss`` reads, and we
replace the model forward ``_get_per_token_logps_and_entropies`` on the instance with one
that returns our ``logp`` tensor, so TRL's math runs on exactly our tensors and the gradient
flows back to them. If a TRL release reads a new attribute, this fails with an
AttributeError naming it: add it to ``_trl_trainer`` with its neutral value.

Variant mapping (ours ↔ TRL):
- grpo / bnpo / dr_grpo / dapo ↔ same ``loss_type``, ``importance_sampling_level="token"``;
- gspo ↔ ``loss_type="grpo"``, ``importance_sampling_level="sequence"``;
- cispo ↔ ``loss_type="cispo"`` where TRL's ``epsilon_high`` is the absolute weight cap and it
  has no lower clip: ours with ``epsilon=1.0`` (lower bound 0) and ``epsilon_high = cap − 1``.
TRL's sapo / luspo / vespo have no counterpart here.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
import torch

pytest.importorskip("trl")
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.utils import entropy_from_logits as trl_token_entropy
from trl.trainer.utils import selective_log_softmax as trl_selective_log_softmax

from tentalis.training.losses import (
    policy_loss,
    selective_log_softmax,
    token_entropy,
)

F = torch.float64
B, T, MAX_LEN = 6, 7, 9


class _SingleProcess:
    """The accelerator surface _compute_loss touches, for one process."""

    num_processes = 1
    sync_gradients = True

    @staticmethod
    def gather(x: torch.Tensor) -> torch.Tensor:
        return x

    gather_for_metrics = gather

    @staticmethod
    def reduce(x: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        return x


def _trl_trainer(
    logp: torch.Tensor,
    *,
    loss_type: str,
    epsilon: float,
    epsilon_high: float,
    beta: float,
    level: str = "token",
) -> Any:
    trainer = object.__new__(GRPOTrainer)
    state = {
        "loss_type": loss_type,
        "epsilon_low": epsilon,
        "epsilon_high": epsilon_high,
        "beta": beta,
        "importance_sampling_level": level,
        "max_completion_length": MAX_LEN,
        "top_entropy_quantile": 1.0,
        "off_policy_mask_threshold": None,
        "use_vllm": False,
        "vllm_importance_sampling_correction": False,
        "_entropy_bonus_enabled": False,
        "aux_loss_enabled": False,
        "current_gradient_accumulation_steps": 1,
        "args": SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=1),
        "model": SimpleNamespace(training=True),
        "accelerator": _SingleProcess(),
        "_metrics": {"train": defaultdict(list), "eval": defaultdict(list)},
        # the model forward, replaced by our tensor: (per-token logps, entropies, aux loss)
        "_get_per_token_logps_and_entropies": lambda *a, **k: (logp, torch.zeros_like(logp), None),
    }
    for name, value in state.items():
        object.__setattr__(trainer, name, value)
    return trainer


def _batch(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g, dtype=F) * 3
    # log-ratios evenly over [−0.5, 0.5] (ratios ≈ 0.61 … 1.65), shuffled over the positions,
    # and advantages of both signs on every length: low- and high-clipped tokens, and ratios in
    # (1.2, 1.28) where ε_high = 0.2 and 0.28 disagree
    log_ratio = torch.linspace(-0.5, 0.5, B * T, dtype=F)[torch.randperm(B * T, generator=g)]
    old = logp - log_ratio.view(B, T)
    ref = logp + (torch.rand(B, T, generator=g, dtype=F) - 0.5) * 0.6
    lengths = torch.tensor([7, 5, 4, 0, 6, 7])  # one empty completion
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(F)
    adv = torch.tensor([1.0, -0.5, 0.7, 1.1, -1.2, 0.4], dtype=F)
    return {"logp": logp, "old": old, "ref": ref, "adv": adv, "mask": mask}


def _run_trl(batch: dict[str, torch.Tensor], **cfg: Any) -> tuple[torch.Tensor, torch.Tensor, dict]:
    logp = batch["logp"].clone().requires_grad_()
    trainer = _trl_trainer(logp, **cfg)
    inputs = {
        "prompt_ids": torch.zeros(B, 1, dtype=torch.long),
        "prompt_mask": torch.ones(B, 1, dtype=torch.long),
        "completion_ids": torch.zeros(B, T, dtype=torch.long),
        "completion_mask": batch["mask"],
        "advantages": batch["adv"],
        "old_per_token_logps": batch["old"],
        "ref_per_token_logps": batch["ref"],
        "num_items_in_batch": batch["mask"].sum(),
    }
    loss = trainer._compute_loss(None, inputs)
    loss.backward()
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return loss.detach(), logp.grad, metrics


def _run_ours(batch: dict[str, torch.Tensor], **kw: Any) -> tuple[torch.Tensor, torch.Tensor, dict]:
    logp = batch["logp"].clone().requires_grad_()
    loss, metrics = policy_loss(
        logp,
        batch["old"],
        batch["adv"],
        batch["mask"],
        max_completion_length=MAX_LEN,
        ref_logp=batch["ref"],
        **kw,
    )
    loss.backward()
    return loss.detach(), logp.grad, metrics


TOL = {"rtol": 0.0, "atol": 1e-12}  # float64 throughout: the two should agree to rounding
CASES = [
    # (ours kwargs, TRL config)
    *[
        (
            {"loss_type": lt, "epsilon": 0.2, "epsilon_high": eh},
            {"loss_type": lt, "epsilon": 0.2, "epsilon_high": eh},
        )
        for lt in ("grpo", "bnpo", "dr_grpo", "dapo")
        for eh in (0.2, 0.28)
    ],
    (
        {"loss_type": "gspo", "epsilon": 3e-2, "epsilon_high": 4e-2},
        {"loss_type": "grpo", "epsilon": 3e-2, "epsilon_high": 4e-2, "level": "sequence"},
    ),
    (
        {"loss_type": "cispo", "epsilon": 1.0, "epsilon_high": 0.3},
        {"loss_type": "cispo", "epsilon": 0.2, "epsilon_high": 1.3},
    ),
]


@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize(("ours", "trl_cfg"), CASES, ids=lambda c: str(sorted(c.items())))
def test_policy_loss_matches_trl(ours: dict, trl_cfg: dict, beta: float) -> None:
    batch = _batch(seed=3)
    trl_loss, trl_grad, trl_metrics = _run_trl(batch, beta=beta, **trl_cfg)
    loss, grad, metrics = _run_ours(batch, beta=beta, **ours)

    torch.testing.assert_close(loss, trl_loss, **TOL)
    torch.testing.assert_close(grad, trl_grad, **TOL)
    if beta:
        assert metrics["kl_mean"].item() == pytest.approx(trl_metrics["kl"], abs=1e-12)
    if ours["loss_type"] in ("grpo", "bnpo", "dr_grpo", "dapo"):
        # same definitions: clipped branch active, fraction of unmasked tokens
        assert metrics["clip_frac_low"].item() == pytest.approx(trl_metrics["clip_ratio/low_mean"])
        assert metrics["clip_frac_high"].item() == pytest.approx(
            trl_metrics["clip_ratio/high_mean"]
        )
        assert metrics["clip_frac"].item() == pytest.approx(trl_metrics["clip_ratio/region_mean"])
    # the case must exercise clipping on both sides, or the comparison proves little
    assert metrics["clip_frac_high"] > 0
    if ours["loss_type"] != "cispo":  # ours-as-TRL cispo has no lower clip
        assert metrics["clip_frac_low"] > 0


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_trl_comparison_sees_clip_higher(loss_type: str) -> None:
    # ε_high = 0.2 vs 0.28 must change the loss on this batch, so the matches above cover it
    batch = _batch(seed=3)
    narrow = _run_ours(batch, loss_type=loss_type, epsilon=0.2, epsilon_high=0.2)[0]
    wide = _run_ours(batch, loss_type=loss_type, epsilon=0.2, epsilon_high=0.28)[0]
    assert (narrow - wide).abs() > 1e-4


def test_selective_log_softmax_and_entropy_match_trl() -> None:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(3, 5, 17, generator=g) * 3
    ids = torch.randint(0, 17, (3, 5), generator=g)
    torch.testing.assert_close(
        selective_log_softmax(logits, ids), trl_selective_log_softmax(logits, ids)
    )
    torch.testing.assert_close(token_entropy(logits, chunk_size=2), trl_token_entropy(logits))
