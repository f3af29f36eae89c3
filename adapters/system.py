"""Clock and id adapters shared by every backend."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> datetime:
        """The current instant."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to: for tests, demos and benchmarks."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The current (set) instant."""
        with self._lock:
            return self._now

    def set(self, now: datetime) -> None:
        """Jump to `now`."""
        with self._lock:
            self._now = now

    def advance(self, delta: timedelta) -> None:
        """Move forward by `delta`."""
        with self._lock:
            self._now += delta


class UuidV7Generator:
    """RFC 9562 UUIDv7: 48-bit Unix milliseconds, then randomness; monotonic per process.

    Python 3.11 and 3.12 have no `uuid.uuid7`; the 12-bit `rand_a` field is used as a
    counter within one millisecond so ids from one process always sort in creation order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._counter = 0

    def new_id(self) -> str:
        """A new time-ordered UUID string."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:
                    ms += 1
                    self._counter = 0
            else:
                self._counter = secrets.randbits(8)  # leave room to count up within the ms
            self._last_ms = ms
            counter = self._counter
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= counter << 64
        value |= 0b10 << 62
        value |= secrets.randbits(62)
        return str(uuid.UUID(int=value))
