"""Training metrics: what one step measured, where it is written, and how fast the machine is.

* :class:`StepMetrics` — one optimiser step's numbers (``as_dict()`` for logging).
* :func:`measure_matmul_peak` — achieved fp32 matmul FLOP/s, the denominator of MFU.
* :class:`MetricsLogger` — TensorBoard event files and a JSONL file, side by side.
* :func:`step_table` / :func:`print_step` — a rich table of one step.
* :func:`learning_curve_png` — reward and held-out accuracy against step (matplotlib, Agg).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch


@dataclass
class StepMetrics:
    """What one :meth:`PolicyTrainer.train_step` did.

    ``skipped`` steps (no group with a learning signal, or no trainable token) leave the
    weights and optimiser untouched; ``skip_reason`` says why and the loss fields are 0.
    ``groups_dropped``: groups without signal removed by dynamic sampling;
    ``invalid_rollouts``: rollouts with token ids outside the vocabulary, removed.
    ``loss`` is the surrogate's value, which on-policy (ratio 1) is just −(token-weighted mean
    advantage), ≈ 0 with group-normalised advantages: watch rewards, KL and clip fractions,
    not the loss, to see learning.
    Fractions are over unmasked completion tokens. ``kl`` is None unless β > 0. ``mfu`` is
    achieved FLOP/s (estimated as in ``trainer.step_flops``) over :func:`measure_matmul_peak`.
    """

    step: int
    skipped: bool = False
    skip_reason: str = ""
    loss: float = 0.0
    reward_mean: float = 0.0
    reward_std: float = 0.0
    zero_variance_frac: float = 0.0
    groups: int = 0
    groups_dropped: int = 0
    invalid_rollouts: int = 0
    sequences: int = 0
    truncated_frac: float = 0.0
    ratio_mean: float = 1.0
    clip_frac_low: float = 0.0
    clip_frac_high: float = 0.0
    clip_frac: float = 0.0
    kl: float | None = None
    entropy: float | None = None
    completion_tokens: int = 0
    tokens: int = 0
    tokens_per_s: float = 0.0
    step_time_s: float = 0.0
    flops: float = 0.0
    mfu: float = 0.0
    grad_norm: float = 0.0
    learning_rate: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Every field; None-valued ones (``kl`` without β, ``entropy`` when off) left out."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def scalars(self) -> dict[str, float]:
        """The numeric fields as floats (bools as 0/1), for TensorBoard."""
        return {
            k: float(v)
            for k, v in self.as_dict().items()
            if isinstance(v, int | float) and k != "step"
        }


# --------------------------------------------------------------------------- peak FLOP/s


def measure_matmul_peak(
    device: str | torch.device = "cpu",
    *,
    size: int = 1024,
    seconds: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> float:
    """Achieved FLOP/s of repeated ``size × size`` matmuls for about ``seconds``.

    A matmul of two n×n matrices is 2n³ FLOPs. This is what the machine really does with the
    current thread count (not a datasheet number), which makes MFU an honest "how much of
    this machine did training use".
    """
    device = torch.device(device)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.mm(a, b)  # warm-up (thread pool, kernels)
    sync()
    n, start = 0, time.perf_counter()
    while True:
        torch.mm(a, b)
        n += 1
        if n % 4 == 0:
            sync()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
    return 2.0 * size**3 * n / elapsed


@lru_cache(maxsize=8)
def cached_matmul_peak(device: str, dtype: str = "float32", seconds: float = 0.5) -> float:
    """:func:`measure_matmul_peak` once per (device, dtype) per process."""
    return measure_matmul_peak(device, seconds=seconds, dtype=getattr(torch, dtype))


# --------------------------------------------------------------------------- logging


class MetricsLogger:
    """Writes each step's metrics to TensorBoard (``logdir``) and ``logdir/metrics.jsonl``.

    The JSONL file is appended to, so a resumed run continues the same file; each line is
    ``{"step": …, "time": …, "tag": "train", **metrics}``. ``lines`` counts lines written
    (including those already there), a pointer a checkpoint can record.
    """

    def __init__(
        self, logdir: str | Path, *, tensorboard: bool = True, jsonl_name: str = "metrics.jsonl"
    ) -> None:
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.logdir / jsonl_name
        self.lines = (
            sum(1 for _ in self.jsonl_path.open(encoding="utf-8"))
            if self.jsonl_path.exists()
            else 0
        )
        self._jsonl = self.jsonl_path.open("a", encoding="utf-8")
        self._writer: Any = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.logdir))

    def log(self, step: int, metrics: StepMetrics | Mapping[str, Any], tag: str = "train") -> None:
        """Log one step's metrics (a :class:`StepMetrics` or any mapping) under ``tag``."""
        values = metrics.as_dict() if isinstance(metrics, StepMetrics) else dict(metrics)
        record = {"step": step, "time": time.time(), "tag": tag, **values}
        self._jsonl.write(json.dumps(record, default=str) + "\n")
        self._jsonl.flush()
        self.lines += 1
        if self._writer is not None:
            for key, value in values.items():
                numeric = isinstance(value, bool | int | float) and key != "step"
                if numeric and math.isfinite(float(value)):
                    self._writer.add_scalar(f"{tag}/{key}", float(value), step)
            self._writer.flush()

    def close(self) -> None:
        self._jsonl.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_TABLE_FIELDS = (
    ("loss", "{:.4f}"),
    ("reward_mean", "{:.3f}"),
    ("reward_std", "{:.3f}"),
    ("zero_variance_frac", "{:.0%}"),
    ("clip_frac", "{:.2%}"),
    ("kl", "{:.4f}"),
    ("entropy", "{:.3f}"),
    ("grad_norm", "{:.3f}"),
    ("completion_tokens", "{:d}"),
    ("tokens_per_s", "{:.0f}"),
    ("step_time_s", "{:.2f}"),
    ("mfu", "{:.1%}"),
)


def step_table(metrics: StepMetrics) -> Any:
    """A one-row ``rich.table.Table`` of the headline numbers of a step."""
    from rich.table import Table

    values = metrics.as_dict()
    title = f"step {metrics.step}"
    if metrics.skipped:
        title += f" — skipped: {metrics.skip_reason}"
    table = Table(title=title, show_edge=False)
    shown = [(k, f) for k, f in _TABLE_FIELDS if k in values]
    for key, _ in shown:
        table.add_column(key, justify="right")
    table.add_row(*(fmt.format(values[key]) for key, fmt in shown))
    return table


def print_step(metrics: StepMetrics, console: Any = None) -> None:
    """Print :func:`step_table` to ``console`` (a ``rich.console.Console``; stdout if None)."""
    from rich.console import Console

    (console or Console()).print(step_table(metrics))


# --------------------------------------------------------------------------- plots


def learning_curve_png(
    path: str | Path,
    steps: Sequence[int],
    rewards: Sequence[float],
    eval_points: Sequence[tuple[int, float]] = (),
    *,
    title: str = "learning curve",
) -> Path:
    """Reward vs step (left axis) and held-out accuracy vs step (right axis) as a PNG.

    ``eval_points`` are ``(step, accuracy in [0, 1])`` pairs. Uses matplotlib's Agg
    canvas directly (no pyplot global state), so it is safe in any thread and headless.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(list(steps), list(rewards), color="tab:blue", label="train reward (mean)")
    ax.set_xlabel("step")
    ax.set_ylabel("reward", color="tab:blue")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if eval_points:
        ax2 = ax.twinx()
        xs, ys = zip(*eval_points, strict=True)
        ax2.plot(xs, ys, "o-", color="tab:orange", label="held-out accuracy")
        ax2.set_ylabel("held-out accuracy", color="tab:orange")
        ax2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
