"""Run untrusted programs isolated and limited: no network, own pid namespace, an
unprivileged uid, CPU/memory/process/file-size limits, a wall clock, bounded output."""

from tentalis.sandbox.isolation import SandboxUnavailable, check_isolation, sandbox_python
from tentalis.sandbox.limits import SandboxLimits
from tentalis.sandbox.result import KillReason, SandboxResult
from tentalis.sandbox.runner import Sandbox

__all__ = [
    "KillReason",
    "Sandbox",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "check_isolation",
    "sandbox_python",
]
