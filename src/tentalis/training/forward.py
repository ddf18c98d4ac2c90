"""The trainer's forward pass: per-token log-probs of each completion, and what it cost.

For one micro-batch (rows right-padded, :class:`~tentalis.training.batch.MicroBatch`)::

    kv     = decoder(shared prefix), once, repeated             (share_prefix)
    kv     = decoder(rest of each distinct prompt | kv), once, selected per row
    hidden = decoder(completion | kv)                           # (b, Tc, H)
    logits = lm_head(hidden at completion positions only)        # (b, Tc, V)
    logp   = selective_log_softmax(logits, completion ids)       # (b, Tc)
    ref    = same pass with the adapter disabled, no grad       (when asked: β > 0)

The key/value cache helpers are the decode loop's (:mod:`tentalis.models.kv`). Autograd sums
the rows' gradients through the repeated prefix keys/values, so the LoRA weights get the same
gradient as from one full forward per row.

Only completion positions reach the LM head. This assumes ``logits = lm_head(hidden)``
(Llama, Qwen, Mistral, SmolLM); :func:`check_plain_lm_head` refuses models with logit
soft-capping or scaling. Log-probs are of the untempered logits, like the workers' logprobs.

FLOPs (for MFU): one forward ≈ 2·N_body·T_all + 2·N_head·T_cmp with N_body the decoder's
matmul parameters (embedding lookup excluded), N_head the LM head's, T_all the tokens that
ran (:meth:`ForwardEngine.executed_tokens`: a micro-batch's shared prefix and each distinct
prompt once), T_cmp completion tokens. Attention score FLOPs (≈ 4·layers·L·H per token) and
padding are not counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tentalis.errors import TrainingError
from tentalis.models.kv import cache_keyword, dynamic_cache, left_padded, prefill_prefix
from tentalis.training.batch import MicroBatch, batched, collate
from tentalis.training.losses import selective_log_softmax
from tentalis.training.rollouts import Rollout


@dataclass
class ForwardOutputs:
    """What a loss may need from one micro-batch's forward pass."""

    logits: torch.Tensor  # (b, Tc, V) predicting each completion token, with grad
    logp: torch.Tensor  # (b, Tc) log-probs of the completion tokens, with grad
    ref_logp: torch.Tensor | None = None  # (b, Tc) base model (adapter off), no grad


def check_plain_lm_head(model: Any) -> None:
    """Refuse a model whose logits are not ``lm_head(hidden)`` (the engine computes them so)."""
    for name in ("final_logit_softcapping", "logit_scale"):
        if getattr(model.config, name, None):
            raise TrainingError(
                f"{type(model).__name__} uses {name}; PolicyTrainer computes logits as "
                "lm_head(hidden) and would get them wrong for this model"
            )


class ForwardEngine:
    """Runs micro-batches of rollouts through a peft-wrapped causal LM.

    ``share_prefix`` runs the prefix every row of a micro-batch shares once and each
    distinct prompt once (:meth:`staged_hidden`); otherwise every row runs in full.
    """

    def __init__(
        self,
        model: Any,
        *,
        device: torch.device,
        dtype: torch.dtype,
        pad_id: int,
        share_prefix: bool = True,
    ) -> None:
        self.model = model  # the PeftModel
        causal_lm = model.get_base_model()
        self.decoder = causal_lm.get_decoder()
        self.lm_head = causal_lm.get_output_embeddings()
        self.device, self.dtype, self.pad_id = device, dtype, pad_id
        self.share_prefix = share_prefix
        embed = causal_lm.get_input_embeddings().weight
        self.vocab_size = min(embed.shape[0], self.lm_head.weight.shape[0])
        self.n_head_params = self.lm_head.weight.numel()
        self.n_body_params = sum(p.numel() for p in self.decoder.parameters() if p is not embed)

    # ------------------------------------------------------------------ passes

    def collate(
        self, rollouts: Sequence[Rollout], rows: Sequence[int], adv: torch.Tensor,
        mask: torch.Tensor,
    ) -> MicroBatch:
        """``rollouts[rows]`` as a micro-batch on this engine's device."""
        return collate(rollouts, rows, adv, mask, pad_id=self.pad_id, device=self.device)

    def forward(self, mb: MicroBatch, *, reference: bool = False) -> ForwardOutputs:
        """The policy's completion logits and log-probs (with grad), and the base model's
        log-probs when ``reference``."""
        logits = self.completion_logits(mb)  # (b, Tc, V)
        logp = selective_log_softmax(logits, mb.completion_ids)  # (b, Tc)
        ref = self.reference_logprobs(mb) if reference else None
        return ForwardOutputs(logits, logp, ref)

    def completion_logits(self, mb: MicroBatch) -> torch.Tensor:
        """Logits predicting each completion token, (b, Tc, V): decoder once, LM head on the
        completion positions only (position p predicts token p + 1)."""
        with self.autocast():
            skip = self.prefix_len(mb)
            if skip:
                return self.lm_head(self.staged_hidden(mb, skip))
            out = self.decoder(
                input_ids=mb.input_ids, attention_mask=mb.attention_mask, use_cache=False
            )
            hidden = out.last_hidden_state  # (b, L, H)
            tc, seq_len = mb.completion_ids.shape[1], hidden.shape[1]
            steps = torch.arange(tc, device=hidden.device)
            pos = (mb.prompt_len[:, None] - 1 + steps[None]).clamp(max=seq_len - 1)
            picked = hidden.gather(1, pos[..., None].expand(-1, -1, hidden.shape[-1]))
            return self.lm_head(picked)  # (b, Tc, V)

    def staged_hidden(self, mb: MicroBatch, skip: int) -> torch.Tensor:
        """Hidden states at the positions that predict each completion token, (b, Tc, H),
        computed in three stages over one KV cache::

            prefix   (1, skip)   the tokens every row shares, once; keys/values repeated
            prompts  (U, W)      the rest of each of the U distinct prompts, left-padded to a
                                 common end; its last position predicts completion token 0
            answers  (b, Tc − 1) each row's completion but its last token, after its prompt's
                                 keys/values (selected per row)

        Positions are explicit (padding sits between the stages, masked), so every token
        sees exactly what it sees in a full forward."""
        device, kw = mb.input_ids.device, cache_keyword(self.decoder)
        uniq, index = mb.distinct_prompts, mb.prompt_index
        lens = mb.prompt_len.tolist()
        rests = [mb.input_ids[u, skip:lens[u]].tolist() for u in uniq]
        ids, attn, pos = left_padded(rests, self.pad_id, skip, device)
        cache = dynamic_cache(self.decoder.config)
        prefill_prefix(self.decoder, cache, mb.input_ids[:1, :skip], len(uniq))
        attn = torch.cat([attn.new_ones((len(uniq), skip)), attn], dim=1)
        out = self.decoder(input_ids=ids, attention_mask=attn, position_ids=pos,
                           use_cache=True, **{kw: cache})
        rows = torch.tensor(index, device=device)
        first = out.last_hidden_state[:, -1][rows][:, None]  # (b, 1, H)
        tc = mb.completion_ids.shape[1]
        if tc == 1:
            return first
        if len(uniq) < len(index):
            cache.batch_select_indices(rows)
        done = mb.attention_mask.sum(-1) - mb.prompt_len  # completion lengths
        steps = torch.arange(tc - 1, device=device)
        answer_attn = (steps[None] < done[:, None]).long()
        out = self.decoder(
            input_ids=mb.completion_ids[:, :-1],
            attention_mask=torch.cat([attn[rows], answer_attn], dim=1),
            position_ids=mb.prompt_len[:, None] + steps[None],
            use_cache=True, **{kw: cache},
        )
        return torch.cat([first, out.last_hidden_state], dim=1)

    def reference_logprobs(self, mb: MicroBatch) -> torch.Tensor:
        """Base-model log-probs (adapter disabled, no grad), (b, Tc)."""
        with torch.no_grad(), self.model.disable_adapter():
            return selective_log_softmax(self.completion_logits(mb), mb.completion_ids)

    @torch.no_grad()
    def completion_logprobs(
        self, rollouts: Sequence[Rollout], micro_batch_size: int
    ) -> list[torch.Tensor]:
        """Per-token log-probs of each rollout's completion under the current policy (CPU)."""
        was_training = self.model.training
        self.model.eval()
        out: list[torch.Tensor] = [torch.empty(0)] * len(rollouts)
        t = max((len(r.completion_ids) for r in rollouts), default=0)
        zeros = torch.zeros(len(rollouts), t)
        try:
            for rows in batched(range(len(rollouts)), micro_batch_size):
                mb = self.collate(rollouts, rows, zeros, zeros)
                logp = selective_log_softmax(self.completion_logits(mb), mb.completion_ids)
                for j, i in enumerate(rows):
                    out[i] = logp[j, : len(rollouts[i].completion_ids)].float().cpu()
        finally:
            self.model.train(was_training)
        return out

    def prefix_len(self, mb: MicroBatch) -> int:
        """Tokens of ``mb`` to run once for all rows (0: run every row in full)."""
        return mb.shared_prefix if self.share_prefix else 0

    def autocast(self) -> Any:
        """bf16/fp16 base weights: run the float32 LoRA matmuls in that precision too (the
        LoRA weights and their gradients stay float32). float32: a no-op."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # ------------------------------------------------------------------ accounting

    def executed_tokens(self, rollouts: Sequence[Rollout], rows: Sequence[int],
                        mb: MicroBatch) -> int:
        """Tokens of ``mb`` that run through the decoder (padding not counted): every
        token of every row, or with ``share_prefix`` the shared prefix once, each distinct
        prompt's rest once and each completion but its last token (:meth:`staged_hidden`)."""
        skip = self.prefix_len(mb)
        if not skip:
            return sum(rollouts[i].num_tokens for i in rows)
        prompts = sum(len(rollouts[rows[u]].prompt_ids) - skip for u in mb.distinct_prompts)
        answers = sum(max(len(rollouts[i].completion_ids) - 1, 0) for i in rows)
        return skip + prompts + answers

    def forward_flops(self, tokens: int, completion_tokens: int) -> float:
        """Estimated FLOPs of one forward pass over ``tokens`` executed tokens of which
        ``completion_tokens`` reach the LM head (see the module docstring)."""
        return 2.0 * (self.n_body_params * tokens + self.n_head_params * completion_tokens)
