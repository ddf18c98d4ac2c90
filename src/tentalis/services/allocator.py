"""glibc malloc settings for processes that run torch on several threads.

glibc gives every thread that allocates its own arena (up to 8 × cores). In a tentalis
process the event loop, the inference thread, the trainer's thread and torch's OpenMP
threads all allocate large, short-lived tensors; spread over many arenas, freed memory is
rarely reused by the next allocation of another thread, so the process keeps faulting in
fresh pages (kernel time) and its RSS climbs; capping the arenas roughly halved the
training demo's step time (docs/measurements.md, "malloc arenas").

:func:`limit_arenas` applies that limit from inside the process (``mallopt``), unless the
user set ``MALLOC_ARENA_MAX`` themselves. It must run before the threads start allocating;
the CLI calls it first thing. Other platforms and C libraries: a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter number


def limit_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``arenas``; True when the setting was applied."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
