"""The loss a training step minimises, picked by config.

An :class:`Objective` turns one micro-batch and its :class:`~tentalis.training.forward.
ForwardOutputs` into a loss and its metrics, says how to weight micro-batches so that their
sum is the batch's loss, and which extra forward passes it needs (they count in the FLOPs).
:class:`PolicyGradient` is the GRPO/DAPO-family clipped surrogate of :func:`~tentalis.
training.losses.policy_loss`; another loss is another ``Objective`` returned by
:func:`objective_for`, with what it needs added to ``ForwardOutputs``.
"""

from __future__ import annotations

from typing import Protocol

import torch

from tentalis.config.training import TrainConfig
from tentalis.training.batch import MicroBatch
from tentalis.training.forward import ForwardOutputs
from tentalis.training.losses import micro_batch_weight, policy_loss


class Objective(Protocol):
    """A loss over micro-batches whose weighted sum is the batch's loss."""

    #: Forward passes per step besides the policy's forward and backward (e.g. reference).
    extra_forward_passes: int
    #: Whether :meth:`loss` needs ``ForwardOutputs.ref_logp``.
    needs_reference: bool

    def loss(
        self, mb: MicroBatch, out: ForwardOutputs, *, num_items: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss, metrics)`` of ``mb``; ``num_items``: trainable tokens of the whole batch."""
        ...

    def weight(self, rows: int, total_rows: int, tokens: float, total_tokens: int) -> float:
        """Multiplier of this micro-batch's loss in the batch's sum."""
        ...


class PolicyGradient:
    """Clipped policy gradient (grpo, bnpo, dr_grpo, dapo, gspo, cispo), optional k3 KL.

    On-policy (one update per batch) the old log-probs are the policy's own, detached, so
    the ratio is 1 and the clip only matters for ``old_logprobs='behavior'``, where rows that
    carry the workers' log-probs use those."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.needs_reference = config.beta > 0
        self.extra_forward_passes = 1 if self.needs_reference else 0

    def loss(
        self, mb: MicroBatch, out: ForwardOutputs, *, num_items: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        old = out.logp.detach()
        if cfg.old_logprobs == "behavior":
            old = torch.where(mb.has_behavior[:, None], mb.behavior, old)
        return policy_loss(
            out.logp, old, mb.advantages, mb.mask,
            epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type,
            max_completion_length=cfg.max_new_tokens, ref_logp=out.ref_logp, beta=cfg.beta,
            num_items_in_batch=num_items,
        )  # fmt: skip

    def weight(self, rows: int, total_rows: int, tokens: float, total_tokens: int) -> float:
        return micro_batch_weight(self.config.loss_type, rows, total_rows, tokens, total_tokens)


def objective_for(config: TrainConfig) -> Objective:
    """The objective ``config`` trains with."""
    return PolicyGradient(config)
