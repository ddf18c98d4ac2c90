"""The glibc arena cap the CLI applies at start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tentalis.services.allocator import limit_arenas


def test_a_user_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_applied_on_glibc_in_a_fresh_process() -> None:
    code = ("import os; os.environ.pop('MALLOC_ARENA_MAX', None); "
            "from tentalis.services.allocator import limit_arenas; print(limit_arenas())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"
