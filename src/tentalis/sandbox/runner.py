"""Run an untrusted program in a fresh working directory under :mod:`.isolation` and
:class:`.SandboxLimits`, and report what happened as a :class:`SandboxResult`.

>>> with Sandbox(files={"a.txt": "hi\\n"}) as box:
...     box.run("wc -l a.txt").stdout
'1 a.txt\\n'
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from tentalis.sandbox.isolation import (
    SandboxUnavailable,
    allocate_uid,
    check_isolation,
    command_prefix,
)
from tentalis.sandbox.limits import SandboxLimits
from tentalis.sandbox.result import SandboxResult, classify

_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))  # runs at once, per process
_UNSHARE_SIGNAL_NOTE = "unshare: sigprocmask unblock failed"


def _scrubbed_env(workdir: Path) -> dict[str, str]:
    """The whole environment a sandboxed program sees: no secrets, no proxies."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


class _BoundedReader(threading.Thread):
    """Drains a pipe to EOF, keeping the first ``limit`` bytes."""

    def __init__(self, stream: object, limit: int) -> None:
        super().__init__(daemon=True)
        self.fd = stream.fileno()  # type: ignore[attr-defined]
        self.limit = limit
        self.data = bytearray()
        self.truncated = False

    def run(self) -> None:
        while chunk := os.read(self.fd, 65536):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.truncated = True
            self.data += chunk[: max(room, 0)]


def _kill_tree(pid: int) -> None:
    """SIGKILL the pid namespace's init (the kernel then kills the whole namespace) and
    the wrapper's process group."""
    with contextlib.suppress(OSError):
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _processes_of(uid: int) -> list[int]:
    """Pids whose real uid is ``uid`` (zombies included)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
    return pids


def _reap_uid(uid: int, timeout: float = 3.0) -> None:
    """Kill whatever still runs as the sandbox's uid and wait (bounded) until the kernel
    has torn it down, so a finished run leaves no process behind."""
    deadline = time.monotonic() + timeout
    while (pids := _processes_of(uid)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


class Sandbox:
    """A fresh temporary working directory in which commands run isolated and limited.

    Use as a context manager; the directory and everything in it is removed on exit.
    ``files`` (relative path → text or bytes) are written before the first run. Raises
    :class:`SandboxUnavailable` on entry when isolation is impossible here.
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        files: Mapping[str, str | bytes] | None = None,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self._files = dict(files or {})
        self._dir: Path | None = None
        self.uid = allocate_uid()

    @property
    def path(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the sandbox is not open; use it as a context manager")
        return self._dir

    def __enter__(self) -> Sandbox:
        check_isolation()
        self._dir = Path(tempfile.mkdtemp(prefix="tentalis-sandbox-")).resolve()
        os.chown(self._dir, self.uid, self.uid)
        for rel, content in self._files.items():
            self.write(rel, content)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _inside(self, rel: str) -> Path:
        """``rel`` under the working directory; ValueError for absolute paths or ``..``."""
        if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise ValueError(f"sandbox paths must be relative and stay inside, got {rel!r}")
        return self.path / rel

    def write(self, rel: str, content: str | bytes) -> None:
        """Write a file (and its directories), owned by the sandbox's uid."""
        target = self._inside(rel)
        for parent in reversed(target.relative_to(self.path).parents[:-1]):
            (self.path / parent).mkdir(exist_ok=True)
            os.chown(self.path / parent, self.uid, self.uid)
        data = content.encode() if isinstance(content, str) else content
        target.write_bytes(data)
        os.chown(target, self.uid, self.uid)

    def read(self, rel: str, max_bytes: int = 1_000_000) -> str | None:
        """A regular file's text, or None when it is missing, not a regular file, or a
        link that leads outside the working directory (the program could plant one)."""
        try:
            real = self._inside(rel).resolve(strict=True)
            if not real.is_relative_to(self.path) or not real.is_file():
                return None
            with real.open("rb") as f:
                return f.read(max_bytes).decode(errors="replace")
        except (OSError, ValueError):
            return None

    def run(
        self,
        command: str | Sequence[str],
        *,
        stdin: str | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run ``command`` (a shell string for ``/bin/sh -c``, or an argv) in the working
        directory and wait for it, at most ``limits.wall_s`` seconds."""
        lim = limits or self.limits
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        if not argv:
            raise ValueError("empty command")
        full = [*command_prefix(self.uid), "prlimit", *lim.prlimit_args(), "--", *argv]
        with _SLOTS:
            return self._run(full, stdin, lim)

    async def arun(
        self, command: str | Sequence[str], *, stdin: str | None = None,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:  # fmt: skip
        """:meth:`run` in a worker thread, for async callers."""
        return await asyncio.to_thread(self.run, command, stdin=stdin, limits=limits)

    def _run(self, argv: list[str], stdin: str | None, lim: SandboxLimits) -> SandboxResult:
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, cwd=self.path, env=_scrubbed_env(self.path), start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        except OSError as exc:
            raise SandboxUnavailable(f"could not start the sandbox wrapper: {exc}") from exc
        readers = [_BoundedReader(s, lim.max_output_bytes) for s in (proc.stdout, proc.stderr)]
        for r in readers:
            r.start()
        if stdin is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.write(stdin.encode()[: lim.max_output_bytes])
            with contextlib.suppress(OSError):
                proc.stdin.close()
        waited: list[tuple[int, int, os.struct_rusage]] = []
        waiter = threading.Thread(target=lambda: waited.append(os.wait4(proc.pid, 0)))
        waiter.start()
        waiter.join(lim.wall_s)
        timed_out = waiter.is_alive()
        if timed_out:
            _kill_tree(proc.pid)
            waiter.join()
        _kill_tree(proc.pid)  # the wrapper is gone; stray group members (if any) go too
        _reap_uid(self.uid)
        _, status, usage = waited[0]
        proc.returncode = os.waitstatus_to_exitcode(status)
        for r in readers:
            r.join(timeout=2.0)
        for s in (proc.stdout, proc.stderr):
            if s is not None:
                s.close()
        out, err = (r.data.decode(errors="replace") for r in readers)
        signalled = _UNSHARE_SIGNAL_NOTE in err
        err = "\n".join(line for line in err.splitlines() if _UNSHARE_SIGNAL_NOTE not in line)
        exit_code = -signal.SIGKILL if signalled else proc.returncode
        return SandboxResult(
            exit_code=exit_code,
            stdout=out,
            stderr=err,
            timed_out=timed_out,
            killed_reason=classify(
                exit_code, err, timed_out, usage.ru_utime + usage.ru_stime, lim
            ),
            duration_s=time.monotonic() - start,
            stdout_truncated=readers[0].truncated,
            stderr_truncated=readers[1].truncated,
        )
