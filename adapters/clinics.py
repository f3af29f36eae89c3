"""A clinic directory fixed at start-up: the local server's clinics, from its configuration."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.clinics import ClinicProfile


class StaticClinicDirectory:
    """Clinics known when the process starts, each with the API key id that stands for it."""

    def __init__(self, clinics: Iterable[tuple[ClinicProfile, str]]) -> None:
        self._by_id: dict[str, ClinicProfile] = {}
        self._by_key_id: dict[str, ClinicProfile] = {}
        for profile, api_key_id in clinics:
            if profile.clinic_id in self._by_id or api_key_id in self._by_key_id:
                raise ValueError(f"clinic {profile.clinic_id!r} or its key is given twice")
            self._by_id[profile.clinic_id] = profile
            self._by_key_id[api_key_id] = profile

    def get(self, clinic_id: str) -> ClinicProfile | None:
        """The clinic, or None."""
        return self._by_id.get(clinic_id)

    def by_api_key_id(self, api_key_id: str) -> ClinicProfile | None:
        """The clinic of an API key id, or None."""
        return self._by_key_id.get(api_key_id)

    def all(self) -> Sequence[ClinicProfile]:
        """Every clinic, in id order."""
        return sorted(self._by_id.values(), key=lambda c: c.clinic_id)
