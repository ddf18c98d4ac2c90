"""How the sandbox isolates a program, and the check that it can.

A sandboxed command runs as::

    unshare --net --pid --fork --kill-child --          # own network and pid namespaces
      setpriv --reuid U --regid U --clear-groups        # an unprivileged uid of its own
              --no-new-privs --inh-caps=-all --bounding-set=-all --
        prlimit --cpu --as --nproc --fsize --nofile --core --   # resource limits
          <program>

* **No network**: the new network namespace has only a loopback device, and it is down,
  so ``connect()`` fails both to the host's listening sockets and to the outside world.
* **Processes**: the program is pid 1 of a new pid namespace; when it exits or is killed,
  the kernel kills everything else in that namespace, so nothing outlives a run (a
  background daemon or a fork bomb included). ``RLIMIT_NPROC`` counts per real uid and is
  ignored for root, so the program runs as a fresh unprivileged uid (from a private range
  no real account uses) for which the limit holds.
* **Files**: as that uid it can write only its working directory (owned by it) and
  world-writable places; it cannot touch the repository or root's files.

This needs root (``CAP_SYS_ADMIN`` for the namespaces, ``CAP_SETUID`` for the uid) and
util-linux's ``unshare``, ``setpriv`` and ``prlimit``. When any of that is missing the
sandbox refuses to run (:class:`SandboxUnavailable`, naming what is missing) instead of
running the program without isolation.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import subprocess
import sys
import threading
from functools import cache
from pathlib import Path

from tentalis.errors import TentalisError

UID_BASE = 1_500_000  # far above any real account; only sandboxed programs use this range
_UID_SPAN = 1_000
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


class SandboxUnavailable(TentalisError):
    """The machine cannot isolate a program as the sandbox requires; nothing was run."""


def allocate_uid() -> int:
    """A uid for one run. Runs of this process cycle through 1,000 uids, and processes
    are spread by pid, so concurrent runs do not share a process count."""
    with _uid_lock:
        n = next(_uid_counter) % _UID_SPAN
    return UID_BASE + (os.getpid() % 1_000) * _UID_SPAN + n


def command_prefix(uid: int) -> list[str]:
    """The isolation wrapper, up to (not including) the ``prlimit`` limits."""
    return [
        "unshare", "--net", "--pid", "--fork", "--kill-child", "--",
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
        "--inh-caps=-all", "--bounding-set=-all", "--",
    ]  # fmt: skip


@cache
def check_isolation() -> None:
    """Raise :class:`SandboxUnavailable` unless the isolation above works here.

    Checked once per process by running ``true`` through the full wrapper.
    """
    missing = [tool for tool in ("unshare", "setpriv", "prlimit") if shutil.which(tool) is None]
    if missing:
        raise SandboxUnavailable(
            f"the sandbox needs util-linux's {', '.join(missing)} on PATH "
            "(Debian/Ubuntu: apt-get install util-linux)"
        )
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "the sandbox needs root (CAP_SYS_ADMIN to create network and pid namespaces, "
            "CAP_SETUID to run the program as an unprivileged uid); run the scorer as root, "
            "e.g. in a container"
        )
    probe = [*command_prefix(allocate_uid()), "prlimit", "--nproc=4", "--", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=10, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"the sandbox's isolation check failed: {exc}") from exc
    if done.returncode != 0:
        raise SandboxUnavailable(
            "could not create network/pid namespaces or switch uid "
            f"({' '.join(probe[:3])} …): {done.stderr.strip() or done.returncode}"
        )


def _world_usable(path: Path) -> bool:
    """True when any uid can execute ``path`` (every parent directory searchable)."""
    try:
        real = path.resolve(strict=True)
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


@cache
def sandbox_python() -> str:
    """A Python interpreter the sandbox uid can run: this one when it is world-readable,
    else the system's ``python3``. Raises :class:`SandboxUnavailable` when there is none."""
    candidates = [sys.executable, "/usr/bin/python3", shutil.which("python3") or ""]
    for candidate in filter(None, candidates):
        if _world_usable(Path(candidate)):
            return str(Path(candidate).resolve())
    raise SandboxUnavailable(
        f"no Python interpreter the sandbox uid may run (tried {candidates}); "
        "install python3 system-wide or make this one world-readable"
    )
