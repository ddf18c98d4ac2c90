"""The objective picked by config: policy gradient, its reference pass and its weights."""

from __future__ import annotations

import torch

from tentalis.training import TrainConfig
from tentalis.training.batch import MicroBatch
from tentalis.training.forward import ForwardOutputs
from tentalis.training.losses import policy_loss
from tentalis.training.objective import PolicyGradient, objective_for


def micro_batch(has_behavior: bool) -> MicroBatch:
    return MicroBatch(
        input_ids=torch.zeros(1, 4, dtype=torch.long),
        attention_mask=torch.ones(1, 4, dtype=torch.long),
        prompt_len=torch.tensor([2]),
        completion_ids=torch.tensor([[5, 6]]),
        mask=torch.ones(1, 2),
        advantages=torch.tensor([[1.0, 1.0]]),
        behavior=torch.tensor([[-1.0, -2.0]]),
        has_behavior=torch.tensor([has_behavior]),
    )


def test_policy_gradient_needs_a_reference_pass_only_with_kl() -> None:
    plain, kl = objective_for(TrainConfig()), objective_for(TrainConfig(beta=0.1))
    assert isinstance(plain, PolicyGradient)
    assert (plain.needs_reference, plain.extra_forward_passes) == (False, 0)
    assert (kl.needs_reference, kl.extra_forward_passes) == (True, 1)
    assert objective_for(TrainConfig(loss_type="bnpo")).weight(2, 6, 3.0, 12) == 0.25


def test_on_policy_ratio_is_one_and_behavior_logprobs_replace_it_when_asked() -> None:
    logp = torch.tensor([[-1.5, -1.5]], requires_grad=True)
    out = ForwardOutputs(logits=torch.zeros(1, 2, 8), logp=logp)
    _, parts = objective_for(TrainConfig()).loss(micro_batch(True), out, num_items=2)
    assert float(parts["ratio_mean"]) == 1.0
    cfg = TrainConfig(old_logprobs="behavior")
    behavior = objective_for(cfg)
    loss, parts = behavior.loss(micro_batch(True), out, num_items=2)
    expected, _ = policy_loss(
        logp, torch.tensor([[-1.0, -2.0]]), torch.tensor([[1.0, 1.0]]), torch.ones(1, 2),
        epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type,
        num_items_in_batch=2,
    )
    torch.testing.assert_close(loss, expected)
    ratio = (torch.exp(torch.tensor(-0.5)) + torch.exp(torch.tensor(0.5))) / 2
    torch.testing.assert_close(parts["ratio_mean"], ratio)
    _, parts = behavior.loss(micro_batch(False), out, num_items=2)  # no behaviour: own
    assert float(parts["ratio_mean"]) == 1.0
