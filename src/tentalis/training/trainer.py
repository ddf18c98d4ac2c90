"""``PolicyTrainer``: one LoRA policy, trained from scored rollout groups (GRPO/DAPO family).

One :meth:`PolicyTrainer.train_step` is one optimiser update from a batch of groups::

    batch = prepare_batch(groups)           shaping, dynamic sampling, advantages, mask
    for each micro-batch (rows longest first, right-padded):
        out  = forward(mb)                  logits, logp (+ reference logp when β > 0)
        (w · objective.loss(mb, out)).backward()                    # accumulate
    clip grad norm → AdamW step

The pieces live beside it: :mod:`~tentalis.training.batch` (batch preparation, pure),
:mod:`~tentalis.training.forward` (the staged shared-prefix forward and FLOP counting),
:mod:`~tentalis.training.objective` (the loss, picked by config) and
:mod:`~tentalis.training.adapter_io` (LoRA weights in and out).

Accumulation is exact: the micro-batch weights ``w`` make the summed micro-batch losses equal
the full-batch loss for every loss type — dapo/cispo get ``num_items_in_batch`` = trainable
tokens of the whole batch (w = 1); grpo/gspo/dr_grpo are means over rows (w = b/B); bnpo is
normalised by the tokens of the whole batch (w = n_b/N), which makes it equal to dapo here
(TRL normalises bnpo per process). So micro_batch 1 × 4 and 4 × 1 give the same gradients.

FLOPs (for MFU, :meth:`PolicyTrainer.step_flops`): the LoRA backward needs activation
gradients through every frozen matmul (≈ the forward again) but no weight gradients for
them, so backward ≈ 1 × forward, not the 2 × of full fine-tuning: step ≈ 2 × forward
(+ 1 forward per extra pass of the objective, the reference when β > 0).
"""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tentalis.config.training import TrainConfig
from tentalis.errors import TrainingError
from tentalis.models.precision import resolve_dtype
from tentalis.training import adapter_io
from tentalis.training.batch import has_signal, prepare_batch, schedule, shaped
from tentalis.training.forward import ForwardEngine, check_plain_lm_head
from tentalis.training.losses import token_entropy
from tentalis.training.metrics import StepMetrics, cached_matmul_peak
from tentalis.training.objective import objective_for
from tentalis.training.rollouts import Rollout, RolloutGroup

_LOSS_METRICS = ("ratio_mean", "clip_frac_low", "clip_frac_high", "clip_frac", "kl_mean")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(choice: str) -> torch.device:
    """``auto`` → cuda when torch sees a GPU, else cpu."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "device='cuda' but torch sees no CUDA device; use device='auto' or 'cpu'"
        )
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


class PolicyTrainer:
    """A base model wrapped with one trainable LoRA adapter, and its AdamW optimiser.

    ``model`` is a model directory (loaded in ``config.dtype`` on ``config.device``) or an
    already-built ``PreTrainedModel`` (then wrapped in place; pass its ``tokenizer`` too if
    you want :attr:`tokenizer` set). Only LoRA parameters train; the base weights never
    change. ``peak_flops`` overrides the measured matmul peak used for MFU.
    """

    #: Skip the forward/backward of rows with no trainable token (exact; see
    #: :func:`~tentalis.training.batch.schedule`). False only to check that equivalence in tests.
    skip_untrainable_rows: bool = True

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        config: TrainConfig | None = None,
        *,
        tokenizer: Any = None,
        peak_flops: float | None = None,
    ) -> None:
        from peft import LoraConfig, PeftModel, get_peft_model

        self.config = cfg = config or TrainConfig()
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype, self.device, cpu_bf16=False)
        seed_everything(cfg.seed)
        if isinstance(model, str | os.PathLike):
            base, tokenizer = self._load(Path(model), tokenizer)
            self.base_model_name = str(model)
        else:
            if isinstance(model, PeftModel):
                raise TrainingError("pass the base model; PolicyTrainer adds its own LoRA")
            base = model.to(self.device)
            self.dtype = next(base.parameters()).dtype  # a given model is used as it is
            self.base_model_name = str(getattr(base.config, "_name_or_path", "") or "")
        self.tokenizer = tokenizer
        check_plain_lm_head(base)
        base.config.use_cache = False
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules,
            bias="none",
        )
        with warnings.catch_warnings():  # peft probes a property transformers 5 deprecated
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            self.model = get_peft_model(base, lora)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not named or any("lora_" not in n for n, _ in named):
            raise TrainingError(f"expected only LoRA parameters to train, got {len(named)}")
        self.trainable = [p for _, p in named]
        self.optimizer = torch.optim.AdamW(
            self.trainable,
            lr=cfg.learning_rate,
            betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_eps,
            weight_decay=cfg.weight_decay,
        )
        self.engine = ForwardEngine(
            self.model,
            device=self.device,
            dtype=self.dtype,
            pad_id=int(getattr(base.config, "pad_token_id", None) or 0),
            share_prefix=cfg.share_prefix,
        )
        self.objective = objective_for(cfg)
        self.vocab_size = self.engine.vocab_size
        self.n_head_params = self.engine.n_head_params
        self.n_body_params = self.engine.n_body_params
        self.step = 0
        self._peak = peak_flops

    def _load(self, path: Path, tokenizer: Any) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (path / "config.json").is_file():
            raise TrainingError(f"{path} is not a model directory (no config.json)")
        attention = self.config.attention
        if attention == "auto":
            attention = "eager" if self.device.type == "cpu" else "sdpa"
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=self.dtype, attn_implementation=attention
        ).to(self.device)
        return model, tokenizer or AutoTokenizer.from_pretrained(path)

    # ------------------------------------------------------------------ training

    def train_step(self, groups: Sequence[RolloutGroup]) -> StepMetrics:
        """One optimiser update from ``groups``; a skipped step changes nothing."""
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        metrics = self.compute_gradients(groups)
        if not metrics.skipped:
            max_norm = self.config.max_grad_norm or float("inf")
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            metrics.step = self.step
            metrics.grad_norm = float(norm)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        metrics.step_time_s = time.perf_counter() - t0
        if not metrics.skipped:
            metrics.tokens_per_s = metrics.tokens / metrics.step_time_s
            metrics.mfu = metrics.flops / metrics.step_time_s / self.peak_flops
        return metrics

    def compute_gradients(self, groups: Sequence[RolloutGroup]) -> StepMetrics:
        """Accumulate the loss gradient for ``groups`` into the LoRA ``.grad`` (no step, no
        zeroing) and return the metrics; :meth:`train_step` is this plus clip and step."""
        cfg, engine, objective = self.config, self.engine, self.objective
        groups = list(groups)
        metrics = StepMetrics(
            step=self.step, groups=len(groups), learning_rate=self.optimizer.param_groups[0]["lr"]
        )
        batch = prepare_batch(groups, cfg, vocab_size=self.vocab_size)
        for key, value in batch.stats.items():
            setattr(metrics, key, value)
        if batch.skip_reason:
            metrics.skipped, metrics.skip_reason = True, batch.skip_reason
            return metrics
        rollouts, n_items = batch.rollouts, batch.num_items

        self.model.train()
        sums = dict.fromkeys(("loss", "entropy", *_LOSS_METRICS), 0.0)
        live, micro_batches = schedule(
            batch, cfg.micro_batch_size, skip_untrainable=self.skip_untrainable_rows
        )
        executed = 0  # tokens that ran through the decoder (ForwardEngine.executed_tokens)
        for rows in micro_batches:
            mb = engine.collate(rollouts, rows, batch.advantages, batch.mask)
            executed += engine.executed_tokens(rollouts, rows, mb)
            out = engine.forward(mb, reference=objective.needs_reference)
            loss, parts = objective.loss(mb, out, num_items=n_items)
            tokens = float(mb.mask.sum())
            weight = objective.weight(len(rows), len(rollouts), tokens, n_items)
            (loss * weight).backward()
            sums["loss"] += float(loss.detach()) * weight
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value) * tokens
            if cfg.compute_entropy:
                with torch.no_grad():
                    sums["entropy"] += float((token_entropy(out.logits.detach()) * mb.mask).sum())
        metrics.loss = sums["loss"]
        for key in ("ratio_mean", "clip_frac_low", "clip_frac_high", "clip_frac"):
            setattr(metrics, key, sums[key] / n_items)
        metrics.kl = sums["kl_mean"] / n_items if cfg.beta > 0 else None
        metrics.entropy = sums["entropy"] / n_items if cfg.compute_entropy else None
        metrics.completion_tokens = n_items
        metrics.tokens = sum(rollouts[i].num_tokens for i in live)  # what was trained on
        metrics.flops = self.step_flops(
            executed, sum(len(rollouts[i].completion_ids) for i in live)
        )
        return metrics

    def shaped(self, group: RolloutGroup) -> RolloutGroup:
        """``group`` with the rewards this trainer trains on (the soft overlong penalty added
        when ``overlong='penalty'``; otherwise unchanged)."""
        return shaped(group, self.config)

    def has_signal(self, group: RolloutGroup) -> bool:
        """Whether ``group`` would get a non-zero advantage anywhere in a step (what dynamic
        sampling keeps): judged on the shaped rewards, so a group whose outcomes are equal
        but whose lengths earn different overlong penalties still counts."""
        return has_signal(group, self.config)

    def completion_logprobs(self, rollouts: Sequence[Rollout]) -> list[torch.Tensor]:
        """Per-token log-probs of each rollout's completion under the current policy (CPU)."""
        return self.engine.completion_logprobs(rollouts, self.config.micro_batch_size)

    # ------------------------------------------------------------------ accounting

    def step_flops(self, tokens: int, completion_tokens: int) -> float:
        """Estimated FLOPs of one step (see the module docstring)."""
        passes = 2.0 + self.objective.extra_forward_passes
        return passes * self.engine.forward_flops(tokens, completion_tokens)

    @property
    def peak_flops(self) -> float:
        """Matmul peak FLOP/s of this device (measured once per process unless given)."""
        if self._peak is None:
            self._peak = cached_matmul_peak(self.device.type, str(self.dtype).split(".")[-1])
        return self._peak

    # ------------------------------------------------------------------ adapter state

    def save_adapter(self, directory: str | os.PathLike[str]) -> Path:
        """Write only the LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``)
        to ``directory``: what an inference worker loads with ``load_adapter(name, path)``."""
        return adapter_io.save_adapter(self.model, directory)

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA weights (peft names, no adapter suffix), cloned to CPU."""
        return adapter_io.adapter_state_dict(self.model)

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load LoRA weights saved by :meth:`adapter_state_dict` / :meth:`save_adapter`."""
        adapter_io.load_adapter_state_dict(self.model, state)
