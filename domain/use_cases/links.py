"""The patients' links: signing one for an appointment or a waitlist offer, and reading one back.

An offer's token names the waitlist entry (its id, a UUID like an appointment's) and expires
with the offer's hold. An entry may be offered time again after an offer ends, so a token acts
only on the offer whose `expires_at` it carries (`is_current_offer`): a link of an earlier
offer never takes or lets go of a later one.
"""

from __future__ import annotations

from datetime import datetime

from domain.appointment import Appointment
from domain.clinics import ClinicProfile
from domain.links import InvalidLink, LinkClaims, LinkExpired, Purpose, UnknownKey, mint, verify
from domain.waitlist import Offer, WaitlistEntry
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

    def offer_token(self, entry: WaitlistEntry) -> str:
        """A token naming `entry`'s current offer, valid until the offer's hold ends."""
        if entry.offer is None:
            raise ValueError("the entry has no offer to link to")
        claims = LinkClaims(
            clinic_id=entry.clinic_id,
            appointment_id=entry.waitlist_id,
            purpose=Purpose.OFFER,
            expires_at=entry.offer.expires_at,
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

    def purpose(self, token: str, *, now: datetime) -> Purpose:
        """What a genuine token is for (expired or not); InvalidLink if it is not genuine."""
        for purpose in Purpose:
            try:
                self.claims(token, purpose=purpose, now=now)
            except LinkExpired:
                return purpose
            except InvalidLink:
                continue
            return purpose
        raise InvalidLink("not a token of any purpose")


def is_current_offer(claims: LinkClaims, offer: Offer | None) -> bool:
    """Whether an offer token's claims name `offer` (the entry's offer now), not an earlier one."""
    # The token keeps whole epoch seconds: compare at that resolution.
    return offer is not None and int(claims.expires_at.timestamp()) == int(
        offer.expires_at.timestamp()
    )
