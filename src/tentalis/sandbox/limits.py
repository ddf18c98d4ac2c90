"""Resource limits for one sandboxed run, and the ``prlimit`` arguments that impose them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """What one sandboxed command may use. Every field is a hard bound.

    * ``wall_s`` — seconds of real time before the whole process tree is killed;
    * ``cpu_s`` — seconds of CPU time (``RLIMIT_CPU``; SIGXCPU, then SIGKILL one second on);
    * ``memory_mb`` — address space per process (``RLIMIT_AS``), so a large allocation
      fails inside the program (``MemoryError``) rather than the machine swapping;
    * ``max_processes`` — processes (and threads) the sandbox user may have at once
      (``RLIMIT_NPROC``; enforced because the program runs as an unprivileged uid of its own);
    * ``max_file_mb`` — size of any file it writes (``RLIMIT_FSIZE``);
    * ``max_open_files`` — open file descriptors (``RLIMIT_NOFILE``);
    * ``max_output_bytes`` — stdout and stderr are each kept up to this many bytes (the
      rest is read and dropped, so a chatty program cannot block or fill memory).
    """

    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    max_processes: int = 32
    max_file_mb: int = 16
    max_open_files: int = 64
    max_output_bytes: int = 64_000

    def __post_init__(self) -> None:
        numbers = {
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "memory_mb": self.memory_mb,
            "max_processes": self.max_processes,
            "max_file_mb": self.max_file_mb,
            "max_open_files": self.max_open_files,
            "max_output_bytes": self.max_output_bytes,
        }
        bad = {k: v for k, v in numbers.items() if not v > 0}
        if bad:
            raise ValueError(f"sandbox limits must be positive, got {bad}")
        if self.max_open_files < 8:
            raise ValueError("max_open_files must be at least 8 (stdio and the interpreter)")

    def prlimit_args(self) -> list[str]:
        """``prlimit(1)`` options that set these limits (soft and hard) on the program."""
        mb = 1024 * 1024
        return [
            f"--cpu={self.cpu_s}:{self.cpu_s + 1}",
            f"--as={self.memory_mb * mb}",
            f"--nproc={self.max_processes}",
            f"--fsize={self.max_file_mb * mb}",
            f"--nofile={self.max_open_files}",
            "--core=0",
        ]
