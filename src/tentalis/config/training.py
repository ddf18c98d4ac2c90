"""``TrainConfig``: every knob of the online LoRA policy trainer, each documented once.

The defaults are DAPO on LoRA (clip-higher 0.2 / 0.28, token-level loss, dynamic sampling,
overlong filtering, no KL) sized for a small model on a laptop CPU. Invalid combinations fail
when the config is built, with a message that says which field to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tentalis.config.paths import default_home

LossType = Literal["grpo", "bnpo", "dr_grpo", "dapo", "gspo", "cispo"]
TrainerBackend = Literal["standalone", "openrlhf"]
Advantage = Literal["group", "batch", "none", "rloo"]
Overlong = Literal["none", "mask", "penalty"]
OldLogprobs = Literal["detached", "behavior"]
DeviceChoice = Literal["auto", "cpu", "cuda"]
DtypeChoice = Literal["auto", "float32", "bfloat16", "float16"]
AttentionChoice = Literal["auto", "eager", "sdpa"]


def _default_output_dir() -> Path:
    return default_home() / "training"


class TrainConfig(BaseModel):
    """Configuration of :class:`~tentalis.training.trainer.PolicyTrainer`; the ``training``
    section of Settings (``settings.training``), where ``seed`` comes from TENTALIS_SEED.

    The trainer trains on whatever groups it is given; ``group_size``, ``prompts_per_step``,
    ``save_every``, ``keep_checkpoints`` and ``output_dir`` are for the code that feeds it
    (the trainer service) and are kept here so one config describes a run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    backend: TrainerBackend = Field(
        default="standalone",
        description="Where training runs: standalone (torch + peft, CPU or CUDA) or openrlhf.",
    )

    # --- objective ------------------------------------------------------------------------
    loss_type: LossType = Field(
        default="dapo",
        description="Loss aggregation (see losses.policy_loss): grpo (per-sequence mean), "
        "bnpo (token mean), dr_grpo (÷ B·max_new_tokens), dapo (token sum ÷ batch tokens), "
        "gspo (sequence-level ratio), cispo (clipped-weight REINFORCE).",
    )
    advantage: Advantage = Field(
        default="group",
        description="Outcome advantage: reward minus the group mean, divided by the group std "
        "(group), the batch std (batch) or nothing (none, Dr. GRPO); rloo uses the "
        "leave-one-out mean. Step advantages are scaled the same way (rloo: centred only).",
    )
    epsilon: float = Field(
        default=0.2,
        ge=0.0,
        description="Lower clip range ε_low (gspo clips a sequence ratio: use ~3e-4 / 4e-4).",
    )
    epsilon_high: float = Field(
        default=0.28, ge=0.0, description="Upper clip range ε_high (DAPO clip-higher)."
    )
    beta: float = Field(
        default=0.0,
        ge=0.0,
        description="k3 KL penalty towards the base model. β > 0 costs one extra no-grad "
        "forward per micro-batch with the adapter disabled (the base model is the reference; "
        "no second copy is kept).",
    )
    step_reward_weight: float = Field(
        default=0.5,
        ge=0.0,
        description="λ: weight of the per-step (process) advantage added to the outcome "
        "advantage on the tokens of each <step>. 0 trains on outcomes only.",
    )
    overlong: Overlong = Field(
        default="mask",
        description="Completions cut at the length cap: mask (no token of a truncated "
        "completion trains), penalty (DAPO soft length penalty added to the reward; needs "
        "max_new_tokens), none.",
    )
    max_new_tokens: int | None = Field(
        default=None,
        ge=1,
        description="The workers' generation cap in tokens. Required by loss_type=dr_grpo "
        "(its constant normaliser) and by overlong=penalty.",
    )
    overlong_cache_len: int | None = Field(
        default=None,
        ge=1,
        description="Soft-penalty ramp length in tokens (DAPO's L_cache); default "
        "max_new_tokens // 4.",
    )
    dynamic_sampling: bool = Field(
        default=True,
        description="Drop groups that carry no learning signal (equal outcome rewards and, "
        "when λ > 0, equal step rewards) before building the batch (DAPO).",
    )
    old_logprobs: OldLogprobs = Field(
        default="detached",
        description="Importance-ratio denominator. detached: the policy's own log-probs, "
        "detached (exactly on-policy, one update per batch, ratio = 1). behavior: the "
        "workers' sampling log-probs where a rollout carries them (corrects for a worker that "
        "sampled with an older adapter; only meaningful at temperature 1).",
    )

    # --- optimiser ------------------------------------------------------------------------
    learning_rate: float = Field(default=2e-4, gt=0.0, description="AdamW learning rate.")
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW weight decay.")
    adam_beta1: float = Field(default=0.9, ge=0.0, lt=1.0, description="AdamW β1.")
    adam_beta2: float = Field(default=0.999, ge=0.0, lt=1.0, description="AdamW β2.")
    adam_eps: float = Field(default=1e-8, gt=0.0, description="AdamW ε.")
    max_grad_norm: float | None = Field(
        default=1.0, gt=0.0, description="Clip the LoRA gradient norm to this; None = no clip."
    )

    # --- LoRA -----------------------------------------------------------------------------
    lora_r: int = Field(default=16, ge=1, description="LoRA rank.")
    lora_alpha: float = Field(default=32.0, gt=0.0, description="LoRA scale numerator (α/r).")
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="LoRA dropout.")
    lora_target_modules: str | list[str] = Field(
        default="all-linear",
        description="Modules that get LoRA: 'all-linear' (every linear layer but the LM "
        "head) or a list of module names such as ['q_proj', 'v_proj'].",
    )
    adapter_name: str = Field(
        default="policy",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Name the workers load the trained adapter under (ModelUpdateEvent).",
    )

    # --- batch ----------------------------------------------------------------------------
    group_size: int = Field(
        default=4, ge=2, description="Completions sampled per prompt (G); ≥ 2 for a baseline."
    )
    prompts_per_step: int = Field(default=4, ge=1, description="Groups per optimiser step.")
    micro_batch_size: int = Field(
        default=8,
        ge=1,
        description="Sequences per forward/backward; gradients accumulate over the step, so "
        "this trades memory for speed and never changes the result. Bigger is faster on CPU "
        "(larger matmuls); memory grows with it (logits: b × completion × vocab floats).",
    )
    compute_entropy: bool = Field(
        default=True, description="Report mean token entropy (one extra softmax pass)."
    )
    share_prefix: bool = Field(
        default=True,
        description="Run the token prefix that every row of a micro-batch shares (the system "
        "prompt) once, and each distinct prompt (a group's G samples) once, reusing their "
        "keys/values for the rows; gradients flow through them as usual. Same result up to "
        "float rounding; off runs every row in full.",
    )

    # --- runtime --------------------------------------------------------------------------
    seed: int = Field(default=0, description="Seeds torch, random and numpy.")
    device: DeviceChoice = Field(default="auto", description="auto: cuda when available.")
    dtype: DtypeChoice = Field(
        default="auto",
        description="Base-model weights: auto = bfloat16 on a CUDA device that supports it, "
        "float32 on CPU (bf16 on an AMX CPU is faster but unproven for the demo's recipe; "
        "see tentalis.models.precision). LoRA weights and the optimiser stay float32; "
        "bf16/fp16 forwards run under autocast.",
    )
    attention: AttentionChoice = Field(
        default="auto",
        description="Attention kernel of the training forward/backward: auto = eager on CPU "
        "(torch's CPU flash-attention backward is the slow part of a bf16 step there), sdpa "
        "on CUDA. Applies when the trainer loads the model itself.",
    )
    num_threads: int | None = Field(
        default=None, ge=1, description="torch CPU threads; None leaves torch's default."
    )
    save_every: int = Field(default=10, ge=1, description="Checkpoint every K optimiser steps.")
    keep_checkpoints: int = Field(default=3, ge=1, description="Checkpoints kept on disk.")
    output_dir: Path = Field(
        default_factory=_default_output_dir,
        description="Checkpoints, adapters and metrics go here (default <home>/training).",
    )

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.epsilon_high < self.epsilon:
            raise ValueError(
                f"epsilon_high ({self.epsilon_high}) < epsilon ({self.epsilon}): the upper "
                "clip range must be at least the lower one; set epsilon_high ≥ epsilon "
                "(DAPO uses 0.28 with 0.2), or equal for symmetric clipping"
            )
        if self.loss_type == "dr_grpo" and self.max_new_tokens is None:
            raise ValueError(
                "loss_type='dr_grpo' divides by B × max_new_tokens: set max_new_tokens to the "
                "workers' generation cap"
            )
        if self.overlong == "penalty":
            if self.max_new_tokens is None:
                raise ValueError(
                    "overlong='penalty' ramps the penalty up to the length cap: set "
                    "max_new_tokens to the workers' generation cap (or use overlong='mask')"
                )
            cache = self.overlong_cache_len
            if cache is not None and cache > self.max_new_tokens:
                raise ValueError(
                    f"overlong_cache_len ({self.overlong_cache_len}) > max_new_tokens "
                    f"({self.max_new_tokens}): the ramp must fit inside the cap; lower it"
                )
        if isinstance(self.lora_target_modules, list) and not self.lora_target_modules:
            raise ValueError("lora_target_modules is empty: use 'all-linear' or name modules")
        return self

    @property
    def cache_len(self) -> int | None:
        """The soft overlong ramp length in effect (None when overlong != 'penalty')."""
        if self.overlong != "penalty" or self.max_new_tokens is None:
            return None
        return self.overlong_cache_len or max(1, self.max_new_tokens // 4)

    @property
    def sequences_per_step(self) -> int:
        return self.group_size * self.prompts_per_step
