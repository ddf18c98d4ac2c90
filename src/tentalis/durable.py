"""Making writes durable before an atomic rename publishes them (fsync helpers)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory entry; some filesystems refuse it, and then there is nothing more."""
    with contextlib.suppress(OSError):
        fsync_file(path)


def fsync_tree(root: Path) -> None:
    """fsync every file under ``root`` and every directory on the way."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fsync_file(Path(dirpath) / name)
        fsync_dir(Path(dirpath))
