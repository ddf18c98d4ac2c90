"""Which floating-point type to hold a model's weights in, when the user says ``auto``.

bfloat16 where the hardware multiplies it natively, else float32:

* CUDA: bf16 when the GPU supports it (Ampere and newer).
* CPU: bf16 when the CPU has AMX tiles or AVX512-BF16 (Sapphire Rapids and newer Xeons,
  Zen 4). On such a CPU a bf16 matmul runs at several times the float32 rate and reads half
  the bytes (docs/measurements.md, "bf16 on CPU"). Without those instructions bf16 is
  emulated and slower than float32, so float32 stays the default.

Training with bf16 base weights keeps the LoRA weights (the only trained ones) and the
optimiser state in float32; log-probs are computed in float32 from the bf16 logits. The
trainer's ``auto`` stays float32 on a CPU all the same: bf16 trains faster there, but the
demo's recipe has only been shown to improve held-out accuracy in float32 (both:
docs/measurements.md, "bf16 on CPU"). Ask for ``dtype="bfloat16"`` to use it.
"""

from __future__ import annotations

import torch


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices in hardware (AMX or AVX512-BF16)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def auto_dtype(device: torch.device, *, cpu_bf16: bool = True) -> torch.dtype:
    """bf16 where ``device`` computes it natively (see the module docstring), else float32.
    ``cpu_bf16=False``: float32 on every CPU (the trainer's choice, see TrainConfig.dtype)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu" and cpu_bf16 and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32


def resolve_dtype(
    choice: torch.dtype | str, device: torch.device, *, cpu_bf16: bool = True
) -> torch.dtype:
    """``auto`` → :func:`auto_dtype`; a torch dtype or its name → that dtype."""
    if isinstance(choice, torch.dtype):
        return choice
    if choice == "auto":
        return auto_dtype(device, cpu_bf16=cpu_bf16)
    dtype = getattr(torch, choice, None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"unknown floating-point dtype {choice!r}: use auto, float32, "
                         "bfloat16 or float16")
    return dtype
