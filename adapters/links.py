"""Link keys outside AWS: `$CITAS_LINK_SECRET`, or a random key for one process.

`CITAS_LINK_SECRET` is either one secret (at least 16 bytes), signed as key id `k1`, or
`id:secret,id:secret,...`, the first being the current key and the others still accepted
(a rotation: links signed before it keep working until their appointment starts).
Unset, every process draws its own random key: right for `citas serve`, where one process
signs and checks every link, and wrong wherever two processes must agree.
"""

from __future__ import annotations

import secrets

from domain.links import KEY_ID, MIN_SECRET_BYTES, KeyRing, LinkKey

DEFAULT_KEY_ID = "k1"


class StaticLinkKeys:
    """`ports.links.LinkKeySource` over keys fixed at start-up."""

    def __init__(self, ring: KeyRing) -> None:
        self._ring = ring

    def key_ring(self) -> KeyRing:
        """The keys."""
        return self._ring

    def refresh(self) -> KeyRing:
        """The same keys: nothing to read again."""
        return self._ring


def random_link_keys() -> StaticLinkKeys:
    """A fresh random key, for one process."""
    return StaticLinkKeys(KeyRing(LinkKey(DEFAULT_KEY_ID, secrets.token_bytes(32))))


def parse_link_secret(value: str) -> KeyRing:
    """The key ring `CITAS_LINK_SECRET` describes; ValueError (never quoting it) if malformed."""
    if ":" not in value:
        return KeyRing(LinkKey(DEFAULT_KEY_ID, _secret(value)))
    keys: list[LinkKey] = []
    for number, part in enumerate(value.split(","), start=1):
        key_id, sep, secret = part.strip().partition(":")
        if not sep or not KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"CITAS_LINK_SECRET part {number} is not id:secret with an id of 1-8 "
                "lower-case letters or digits"
            )
        keys.append(LinkKey(key_id, _secret(secret, number)))
    if len({k.key_id for k in keys}) != len(keys):
        raise ValueError("CITAS_LINK_SECRET names a key id twice")
    return KeyRing(keys[0], {k.key_id: k for k in keys[1:]})


def _secret(text: str, number: int = 1) -> bytes:
    raw = text.encode()
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"CITAS_LINK_SECRET key {number} is shorter than {MIN_SECRET_BYTES} bytes")
    return raw
