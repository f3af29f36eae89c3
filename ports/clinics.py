"""Which clinics a deployment serves: the directory the edge and the consumers look up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from domain.clinics import ClinicProfile


class ClinicDirectory(Protocol):
    """The clinics of one deployment, by id and by the API key that stands for each."""

    def get(self, clinic_id: str) -> ClinicProfile | None:
        """The clinic, or None if this deployment does not serve it."""
        ...

    def by_api_key_id(self, api_key_id: str) -> ClinicProfile | None:
        """The clinic whose API key (as the gateway identifies it) this is, or None."""
        ...

    def all(self) -> Sequence[ClinicProfile]:
        """Every clinic, in id order."""
        ...
