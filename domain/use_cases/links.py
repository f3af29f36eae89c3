"""The patients' links: signing one for an appointment, and reading one back."""

from __future__ import annotations

from datetime import datetime

from domain.appointment import Appointment
from domain.clinics import ClinicProfile
from domain.links import LinkClaims, Purpose, UnknownKey, mint, verify
from ports.links import LinkKeySource

PAGE_PATH = "/p/"
# Where links point when neither the clinic nor the deployment names a base: `citas serve`.
LOCAL_BASE_URL = "http://127.0.0.1:8000"


class Links:
    """Signs and checks self-service links with the deployment's keys."""

    def __init__(self, keys: LinkKeySource, default_base_url: str | None) -> None:
        self._keys = keys
        self._default_base_url = default_base_url

    def token(self, appointment: Appointment, purpose: Purpose = Purpose.MANAGE) -> str:
        """A token naming `appointment` of its clinic, valid until it starts."""
        claims = LinkClaims(
            clinic_id=appointment.clinic_id,
            appointment_id=appointment.appointment_id,
            purpose=purpose,
            expires_at=appointment.start,
        )
        return mint(self._keys.key_ring(), claims)

    def url(self, clinic: ClinicProfile, token: str) -> str:
        """The link of `token`: the clinic's public base URL, else the deployment's."""
        base = clinic.public_base_url or self._default_base_url or LOCAL_BASE_URL
        return f"{base.rstrip('/')}{PAGE_PATH}{token}"

    def serve_at(self, base_url: str) -> None:
        """Point links without a clinic base URL at `base_url` (a local server, once bound)."""
        self._default_base_url = base_url

    def claims(self, token: str, *, purpose: Purpose, now: datetime) -> LinkClaims:
        """What a genuine token says; InvalidLink or LinkExpired (domain.links) otherwise."""
        try:
            return verify(self._keys.key_ring(), token, purpose=purpose, now=now)
        except UnknownKey:
            # Signed by a key added after this process read the ring: read it once more.
            return verify(self._keys.refresh(), token, purpose=purpose, now=now)
