"""Where the keys that sign patients' links come from."""

from __future__ import annotations

from typing import Protocol

from domain.links import KeyRing


class LinkKeySource(Protocol):
    """The deployment's link-signing keys: the current one and every one still accepted."""

    def key_ring(self) -> KeyRing:
        """The keys, read once and kept."""
        ...

    def refresh(self) -> KeyRing:
        """The keys read again (a token named a key id this process does not hold yet)."""
        ...
