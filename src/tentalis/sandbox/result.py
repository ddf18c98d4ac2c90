"""What a sandboxed run did: :class:`SandboxResult` and the reading of why it was stopped."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

from tentalis.sandbox.limits import SandboxLimits

KillReason = Literal["time", "cpu", "memory", "processes", "file_size"]

# What a program prints when a limit refused it something (Python, glibc, sh/bash, C++).
_MEMORY_SIGNS = ("MemoryError", "Cannot allocate memory", "bad_alloc", "out of memory")
_PROCESS_SIGNS = ("Resource temporarily unavailable", "BlockingIOError", "fork: retry",
                  "can't fork", "Cannot fork")  # fmt: skip
_FILE_SIGNS = ("File too large",)


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed command.

    ``exit_code`` is the program's status (negative: killed by that signal).
    ``killed_reason`` says which limit stopped it, when one did: ``time`` (wall clock, also
    ``timed_out``), ``cpu``, ``memory``, ``processes`` or ``file_size``; for the last three
    it is read from the program's own error output, so it is best effort.
    """

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    killed_reason: KillReason | None
    duration_s: float
    stdout_truncated: bool = False
    stderr_truncated: bool = False

    @property
    def ok(self) -> bool:
        """Exited with status 0 and no limit was hit."""
        return self.exit_code == 0 and self.killed_reason is None and not self.timed_out


def _signal_of(exit_code: int) -> int | None:
    """The signal that ended the program: ``-N`` from a direct child, ``128 + N`` as a
    shell reports it."""
    if exit_code < 0:
        return -exit_code
    if 128 < exit_code < 128 + 65:
        return exit_code - 128
    return None


def classify(
    exit_code: int, stderr: str, timed_out: bool, cpu_used_s: float, limits: SandboxLimits
) -> KillReason | None:
    """Which limit, if any, ended the run (see :class:`SandboxResult`)."""
    if timed_out:
        return "time"
    if exit_code == 0:
        return None
    sig = _signal_of(exit_code)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used_s >= limits.cpu_s - 0.1):
        return "cpu"
    if sig == signal.SIGXFSZ or any(s in stderr for s in _FILE_SIGNS):
        return "file_size"
    if any(s in stderr for s in _MEMORY_SIGNS):
        return "memory"
    if any(s in stderr for s in _PROCESS_SIGNS):
        return "processes"
    if cpu_used_s >= limits.cpu_s - 0.1:
        return "cpu"
    return None
