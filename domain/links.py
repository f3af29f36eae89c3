"""Self-service links: a keyed-MAC token naming one appointment of one clinic, until it starts.

A token is the capability: whoever holds the link may confirm, cancel or move that one
appointment, and nothing else. It is unforgeable (HMAC-SHA256 under a secret key, compared in
constant time), carries no personal data (a clinic id, an appointment id, a purpose and an
expiry, nothing a patient told us), names the key that signed it so the key can rotate, and
expires when the appointment starts.

The wire form is base64url without padding of

    version (1) | key id length (1) | key id | purpose (1) | expiry, epoch seconds (5)
    | appointment id: 0x00 + 16 bytes of a UUID, or 0x01 + length (1) + UTF-8
    | clinic id length (1) | clinic id | MAC (16: HMAC-SHA256 truncated to 128 bits)

so a link stays short enough for one SMS line (about 70 characters for a UUID appointment).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from attrs import field, frozen

from domain.clinics import CLINIC_ID
from domain.text import matches

TOKEN_VERSION: Final = 1
MAC_BYTES: Final = 16
# Longest token the format allows: a 40-character clinic, a 64-character id, an 8-character key.
MAX_TOKEN_LENGTH: Final = 256
KEY_ID: Final = re.compile(r"[a-z0-9]{1,8}")
MIN_SECRET_BYTES: Final = 16
_ALPHABET: Final = re.compile(r"[A-Za-z0-9_-]+")


class Purpose(enum.IntEnum):
    """What a link lets its holder do; a token of one purpose never passes for another."""

    MANAGE = 1  # the patient page of an appointment: confirm, cancel, reschedule
    OFFER = 2  # a waitlist offer: accept or decline (issue 16)


class InvalidLink(Exception):
    """Not a token this deployment signed (tampered, truncated, another key or purpose)."""


class UnknownKey(InvalidLink):
    """Signed, maybe, with a key this process does not hold (yet): a rotation it missed."""


class LinkExpired(Exception):
    """A genuine token whose appointment has started: the link no longer works."""

    def __init__(self, claims: LinkClaims) -> None:
        super().__init__("the link has expired")
        self.claims = claims


def _check_key_id(_: object, __: object, value: str) -> None:
    if not KEY_ID.fullmatch(value):
        raise ValueError("a link key id is 1-8 lower-case letters or digits")


def _check_secret(_: object, __: object, value: bytes) -> None:
    if len(value) < MIN_SECRET_BYTES:
        raise ValueError(f"a link key is at least {MIN_SECRET_BYTES} bytes")


@frozen(repr=False)
class LinkKey:
    """One signing key and the id tokens name it by."""

    key_id: str = field(validator=_check_key_id)
    secret: bytes = field(validator=_check_secret)

    def __repr__(self) -> str:
        # Never the secret, whatever prints the key.
        return f"LinkKey(key_id={self.key_id!r})"


@frozen
class KeyRing:
    """The key that signs new tokens and every key still accepted, by id."""

    current: LinkKey
    accepted: Mapping[str, LinkKey] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.accepted.get(self.current.key_id, self.current) != self.current:
            raise ValueError("two different keys share an id")

    def key(self, key_id: str) -> LinkKey | None:
        """The key named `key_id`, if it is still accepted."""
        if key_id == self.current.key_id:
            return self.current
        return self.accepted.get(key_id)


@frozen
class LinkClaims:
    """What a token says: which appointment of which clinic, for what, until when."""

    clinic_id: str
    appointment_id: str
    purpose: Purpose
    expires_at: datetime

    def __attrs_post_init__(self) -> None:
        if not matches(CLINIC_ID, self.clinic_id):
            raise ValueError("not a clinic id")
        if not self.appointment_id or len(self.appointment_id.encode()) > 64:
            raise ValueError("an appointment id is 1-64 bytes")
        if self.expires_at.tzinfo is None:
            raise ValueError("the expiry must carry a UTC offset")


def _appointment_bytes(appointment_id: str) -> bytes:
    try:
        as_uuid = uuid.UUID(appointment_id)
    except ValueError:
        as_uuid = None
    if as_uuid is not None and str(as_uuid) == appointment_id:
        return b"\x00" + as_uuid.bytes
    raw = appointment_id.encode()
    return b"\x01" + bytes([len(raw)]) + raw


def _mac(key: LinkKey, body: bytes) -> bytes:
    return hmac.new(key.secret, body, hashlib.sha256).digest()[:MAC_BYTES]


def mint(ring: KeyRing, claims: LinkClaims) -> str:
    """The token of `claims`, signed with the ring's current key."""
    key = ring.current
    clinic = claims.clinic_id.encode()
    expiry = int(claims.expires_at.timestamp())
    body = (
        bytes([TOKEN_VERSION, len(key.key_id)])
        + key.key_id.encode()
        + bytes([int(claims.purpose)])
        + expiry.to_bytes(5, "big")
        + _appointment_bytes(claims.appointment_id)
        + bytes([len(clinic)])
        + clinic
    )
    raw = body + _mac(key, body)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise InvalidLink("truncated")
        out = self.data[self.at : self.at + n]
        self.at += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not 16 <= len(token) <= MAX_TOKEN_LENGTH:
        raise InvalidLink("wrong length")
    if not _ALPHABET.fullmatch(token) or len(token) % 4 == 1:
        raise InvalidLink("not base64url")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError) as e:
        raise InvalidLink("not base64url") from e
    # One spelling per token: the unused low bits of the last character must be zero, so
    # no second string decodes to the same bytes (a changed character always breaks it).
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != token:
        raise InvalidLink("not canonical")
    return raw


def verify(ring: KeyRing, token: str, *, purpose: Purpose, now: datetime) -> LinkClaims:
    """The claims of a genuine, unexpired token of `purpose`; InvalidLink or LinkExpired."""
    raw = _decode(token)
    if len(raw) <= MAC_BYTES:
        raise InvalidLink("truncated")
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    reader = _Reader(body)
    if reader.byte() != TOKEN_VERSION:
        raise InvalidLink("unknown version")
    try:
        key_id = reader.take(reader.byte()).decode("ascii")
    except UnicodeDecodeError as e:
        raise InvalidLink("bad key id") from e
    key = ring.key(key_id)
    if key is None:
        raise UnknownKey("unknown key")
    # The MAC first: nothing of an unsigned body is trusted, not even its layout.
    if not hmac.compare_digest(_mac(key, body), mac):
        raise InvalidLink("bad signature")
    claims = _claims(reader)
    if reader.at != len(body):
        raise InvalidLink("trailing bytes")
    if claims.purpose is not purpose:
        raise InvalidLink("another purpose")
    if now >= claims.expires_at:
        raise LinkExpired(claims)
    return claims


def _claims(reader: _Reader) -> LinkClaims:
    try:
        purpose = Purpose(reader.byte())
    except ValueError as e:
        raise InvalidLink("unknown purpose") from e
    expiry = int.from_bytes(reader.take(5), "big")
    kind = reader.byte()
    if kind == 0:
        appointment_id = str(uuid.UUID(bytes=reader.take(16)))
    elif kind == 1:
        appointment_id = reader.take(reader.byte()).decode("utf-8", errors="strict")
    else:
        raise InvalidLink("unknown id form")
    clinic_id = reader.take(reader.byte()).decode("ascii", errors="strict")
    try:
        return LinkClaims(
            clinic_id=clinic_id,
            appointment_id=appointment_id,
            purpose=purpose,
            expires_at=datetime.fromtimestamp(expiry, UTC),
        )
    except (ValueError, OverflowError) as e:
        raise InvalidLink("bad claims") from e
