"""Time and identity, injected so the domain stays deterministic."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """The current instant."""

    def now(self) -> datetime:
        """An aware datetime."""
        ...


class IdGenerator(Protocol):
    """New time-ordered unique ids."""

    def new_id(self) -> str:
        """A UUIDv7 string."""
        ...
