"""Link tokens: unforgeable, one appointment of one clinic, one purpose, until it starts."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.links import parse_link_secret, random_link_keys
from domain.links import (
    MAC_BYTES,
    InvalidLink,
    KeyRing,
    LinkClaims,
    LinkExpired,
    LinkKey,
    Purpose,
    UnknownKey,
    mint,
    verify,
)

KEY = LinkKey("k1", b"0123456789abcdef0123456789abcdef")
RING = KeyRing(KEY)
START = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
BEFORE = START - timedelta(days=2)
ALPHABET = string.ascii_letters + string.digits + "-_"

clinic_ids = st.from_regex(r"[a-z0-9-]{2,40}", fullmatch=True)
appointment_ids = st.one_of(
    st.uuids().map(str),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20),
)
purposes = st.sampled_from(list(Purpose))


def claims(
    clinic: str = "sol", appointment: str = "a-1", purpose: Purpose = Purpose.MANAGE
) -> LinkClaims:
    return LinkClaims(clinic, appointment, purpose, START)


@settings(max_examples=200, deadline=None)
@given(clinic_ids, appointment_ids, purposes)
def test_a_token_verifies_to_exactly_what_was_signed(
    clinic: str, appointment: str, purpose: Purpose
) -> None:
    signed = LinkClaims(clinic, appointment, purpose, START)
    token = mint(RING, signed)
    assert set(token) <= set(ALPHABET)
    assert verify(RING, token, purpose=purpose, now=BEFORE) == signed


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _token(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@settings(max_examples=200, deadline=None)
@given(clinic_ids, clinic_ids, appointment_ids, appointment_ids, purposes, purposes)
def test_a_signature_never_verifies_another_appointment_clinic_or_purpose(
    clinic: str, other_clinic: str, appointment: str, other: str, purpose: Purpose, asked: Purpose
) -> None:
    mine = LinkClaims(clinic, appointment, purpose, START)
    theirs = LinkClaims(other_clinic, other, asked, START)
    signed, wanted = _raw(mint(RING, mine)), _raw(mint(RING, theirs))
    # The other claims with this token's signature: a forgery, unless they are the same claims.
    forged = _token(wanted[:-MAC_BYTES] + signed[-MAC_BYTES:])
    if mine == theirs:
        assert verify(RING, forged, purpose=asked, now=BEFORE) == theirs
        return
    with pytest.raises(InvalidLink):
        verify(RING, forged, purpose=asked, now=BEFORE)
    if asked is not purpose:
        with pytest.raises(InvalidLink):
            verify(RING, mint(RING, mine), purpose=asked, now=BEFORE)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=10**6))
def test_a_token_expires_when_the_appointment_starts(seconds_after: int) -> None:
    token = mint(RING, claims())
    verify(RING, token, purpose=Purpose.MANAGE, now=START - timedelta(seconds=1))
    with pytest.raises(LinkExpired) as expired:
        verify(RING, token, purpose=Purpose.MANAGE, now=START + timedelta(seconds=seconds_after))
    # An expired link is still known to be genuine, so the page can say "expired".
    assert expired.value.claims == claims()


@settings(max_examples=300, deadline=None)
@given(appointment_ids, st.data())
def test_any_single_character_change_breaks_the_token(
    appointment: str, data: st.DataObject
) -> None:
    token = mint(RING, claims(appointment=appointment))
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from([c for c in ALPHABET if c != token[position]]))
    changed = token[:position] + replacement + token[position + 1 :]
    with pytest.raises(InvalidLink):
        verify(RING, changed, purpose=Purpose.MANAGE, now=BEFORE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_anything_that_is_not_a_token_is_refused_as_invalid_never_an_error(text: str) -> None:
    with pytest.raises(InvalidLink):
        verify(RING, text, purpose=Purpose.MANAGE, now=BEFORE)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "A",
        "A" * 15,
        "A" * 257,
        "AQJrMQEAaxQm8AABojMeENZw+IHx",
        "AQJrMQEAaxQm8AAB/ojMeENZw",
        "é" * 40,
    ],
)
def test_tokens_of_wrong_length_or_alphabet_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidLink):
        verify(RING, bad, purpose=Purpose.MANAGE, now=BEFORE)


def test_a_token_truncated_or_extended_is_invalid() -> None:
    token = mint(RING, claims())
    for changed in (token[:-1], token[:-4], token + "A", token + "AAAA", token[1:]):
        with pytest.raises(InvalidLink):
            verify(RING, changed, purpose=Purpose.MANAGE, now=BEFORE)


def test_another_deployments_key_never_verifies() -> None:
    token = mint(RING, claims())
    other = KeyRing(LinkKey("k1", b"another-secret-of-32-bytes-long!"))
    with pytest.raises(InvalidLink):
        verify(other, token, purpose=Purpose.MANAGE, now=BEFORE)


def test_a_rotation_keeps_old_links_working_and_signs_new_ones_with_the_new_key() -> None:
    old_token = mint(RING, claims())
    new_key = LinkKey("k2", b"fedcba9876543210fedcba9876543210")
    rotated = KeyRing(new_key, {"k1": KEY})
    assert verify(rotated, old_token, purpose=Purpose.MANAGE, now=BEFORE) == claims()
    new_token = mint(rotated, claims())
    assert verify(rotated, new_token, purpose=Purpose.MANAGE, now=BEFORE) == claims()
    # A process that has not read the rotation yet sees a key it does not know.
    with pytest.raises(UnknownKey):
        verify(RING, new_token, purpose=Purpose.MANAGE, now=BEFORE)
    # Once the old key is retired, its links stop working.
    with pytest.raises(UnknownKey):
        verify(KeyRing(new_key), old_token, purpose=Purpose.MANAGE, now=BEFORE)


def test_a_uuid_link_fits_one_sms_line() -> None:
    token = mint(
        RING, claims(clinic="clinica-sol", appointment="01a2331e-10d6-7044-81f1-5e05f2477444")
    )
    assert len(token) <= 80


def test_keys_never_show_their_secret() -> None:
    assert "0123456789" not in repr(KEY) and "0123456789" not in repr(RING)
    with pytest.raises(ValueError):
        LinkKey("k1", b"short")
    with pytest.raises(ValueError):
        LinkKey("K-1", b"0123456789abcdef")


def test_the_local_secret_is_one_key_or_a_rotation_list() -> None:
    single = parse_link_secret("a-local-secret-of-enough-bytes")
    assert single.current.key_id == "k1"
    rotation = parse_link_secret("k2:the-new-secret-0123456,k1:the-old-secret-0123456")
    assert rotation.current.key_id == "k2" and rotation.key("k1") is not None
    for bad in (
        "short",
        "k1:short",
        "K1:a-long-enough-secret-123",
        "k1:aaaaaaaaaaaaaaaaaa,k1:bbbbbbbbbbbbbbbbbbbb",
    ):
        with pytest.raises(ValueError) as raised:
            parse_link_secret(bad)
        assert "aaaaaaaaaaaa" not in str(raised.value) and "long-enough" not in str(raised.value)
    assert random_link_keys().key_ring().current != random_link_keys().key_ring().current
