"""``auto`` precision: bf16 only where the hardware multiplies it natively."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tentalis.models import precision


def test_auto_is_bf16_on_a_cpu_with_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.auto_dtype(torch.device("cpu")) == torch.bfloat16
    # the trainer asks for float32 on every CPU
    assert precision.auto_dtype(torch.device("cpu"), cpu_bf16=False) == torch.float32
    assert precision.resolve_dtype("auto", torch.device("cpu"), cpu_bf16=False) == torch.float32
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.auto_dtype(torch.device("cpu")) == torch.float32


def test_names_and_dtypes_resolve_and_bad_names_fail() -> None:
    cpu = torch.device("cpu")
    assert precision.resolve_dtype("float32", cpu) == torch.float32
    assert precision.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert precision.resolve_dtype(torch.float16, cpu) == torch.float16
    assert precision.resolve_dtype("auto", cpu) == precision.auto_dtype(cpu)
    for bad in ("int8", "nope"):
        with pytest.raises(ValueError, match="floating-point dtype"):
            precision.resolve_dtype(bad, cpu)


def test_the_probe_reads_the_cpu_flags() -> None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        pytest.skip("no /proc/cpuinfo on this platform")
    flags = cpuinfo.read_text()
    native = " amx_tile" in flags or " avx512_bf16" in flags
    assert precision.cpu_has_native_bf16() == native
