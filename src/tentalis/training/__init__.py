"""tentalis.training: GRPO/DAPO-family LoRA training from scored rollout groups.

``losses`` and ``sampling`` are the pure math; ``rollouts`` turns ScoreEvents into token
sequences and groups; ``batch`` prepares a step's rows (shaping, dynamic sampling,
advantages, micro-batches); ``forward`` runs them through the model (staged shared-prefix
pass, FLOPs); ``objective`` is the loss picked by config; ``adapter_io`` moves LoRA weights;
``trainer.PolicyTrainer`` holds model and optimiser and runs the step; ``checkpoint`` saves
and resumes atomically; ``metrics`` logs and measures. transformers and peft are imported
only when a trainer is built.
"""

from tentalis.config.training import TrainConfig
from tentalis.training.checkpoint import CheckpointManager
from tentalis.training.metrics import (
    MetricsLogger,
    StepMetrics,
    learning_curve_png,
    measure_matmul_peak,
    print_step,
)
from tentalis.training.rollouts import (
    Rollout,
    RolloutBuffer,
    RolloutGroup,
    group_by,
    rollout_advantages,
    rollout_from_score,
)
from tentalis.training.trainer import PolicyTrainer

__all__ = [
    "CheckpointManager",
    "MetricsLogger",
    "PolicyTrainer",
    "Rollout",
    "RolloutBuffer",
    "RolloutGroup",
    "StepMetrics",
    "TrainConfig",
    "group_by",
    "learning_curve_png",
    "measure_matmul_peak",
    "print_step",
    "rollout_advantages",
    "rollout_from_score",
]
