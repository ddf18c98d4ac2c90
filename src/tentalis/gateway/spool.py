"""An append-only, fsynced spool of events that could not be published yet.

One JSON event per line. ``append`` writes whole lines and fsyncs before returning, so an
event the gateway has spooled survives a crash of the process or the machine. ``drain``
hands the spooled events back in order and forgets them only after the caller says they
were published; a crash in between replays them, which is harmless because every event
keeps its ``event_id`` (JetStream deduplicates by ``Nats-Msg-Id``, the store by primary
key). A torn last line (a crash mid-write) or any line that does not decode is moved to
``<name>.rejected`` with the reason, never silently dropped.

The spool belongs to one process: two gateways need two spool files.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from tentalis.durable import fsync_dir
from tentalis.errors import EventDecodeError
from tentalis.events import Event, decode_event

log = logging.getLogger(__name__)


class Spool:
    """Events waiting for the bus, kept in ``path`` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Events spooled (complete lines)."""
        with self._lock:
            if not self.path.exists():
                return 0
            with self.path.open("rb") as f:
                return sum(1 for line in f if line.endswith(b"\n"))

    def __bool__(self) -> bool:
        with self._lock:
            return self.path.exists() and self.path.stat().st_size > 0

    def append(self, events: list[Event]) -> None:
        """Write ``events`` durably (one write, one fsync)."""
        if not events:
            return
        data = b"".join(e.to_bytes() + b"\n" for e in events)
        with self._lock:
            new = not self.path.exists()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:
                fsync_dir(self.path.parent)

    def read(self) -> list[Event]:
        """Every spooled event, oldest first (undecodable lines are set aside)."""
        with self._lock:
            if not self.path.exists():
                return []
            raw = self.path.read_bytes()
        events: list[Event] = []
        bad: list[bytes] = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                events.append(decode_event(line))
            except EventDecodeError as exc:
                log.warning("spool %s: a line does not decode (%s); set aside", self.path, exc)
                bad.append(line)
        if bad:
            self._reject(bad)
        return events

    def forget(self, count: int) -> None:
        """Drop the first ``count`` events (they were published); keep the rest."""
        with self._lock:
            if not self.path.exists():
                return
            lines = [ln for ln in self.path.read_bytes().split(b"\n") if ln.strip()]
            rest = lines[count:]
            if not rest:
                self.path.unlink()
            else:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_bytes(b"\n".join(rest) + b"\n")
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            fsync_dir(self.path.parent)

    def _reject(self, lines: list[bytes]) -> None:
        with self._lock:
            with self.rejected_path.open("ab") as f:
                f.write(b"".join(ln + b"\n" for ln in lines))
                f.flush()
                os.fsync(f.fileno())
            kept = [
                ln for ln in self.path.read_bytes().split(b"\n") if ln.strip() and ln not in lines
            ]
            self.path.write_bytes(b"".join(ln + b"\n" for ln in kept))
