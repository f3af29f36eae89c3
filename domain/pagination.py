"""Opaque page tokens: a backend cursor bound to the query that produced it, and signed.

A token is `<payload>.<mac>`, both base64url without padding: the payload is the JSON
`{"q": <digest of the query>, "c": <backend cursor>}`, the MAC an HMAC-SHA256 over the
payload's text under the deployment's page-token key. The MAC is checked, in constant time,
before anything of the token is decoded, so a token that is not exactly one the server issued
(forged, edited, another list's, a JSON bomb) is refused without being parsed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final

from domain.errors import ValidationError
from domain.text import matches, pattern

# How many items one page of a list may hold, and holds when the caller does not say.
MAX_PAGE: Final = 100
DEFAULT_PAGE: Final = 50
# Far longer than any cursor citas makes (a few hundred characters), far shorter than harm.
MAX_TOKEN_LENGTH: Final = 2048
MIN_KEY_BYTES: Final = 16
_MAC_BYTES: Final = 16  # 128 bits of HMAC-SHA256: more than enough against forgery
_TOKEN: Final = pattern(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _query_id(query: Mapping[str, Any]) -> str:
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PageTokens:
    """Issues and checks the page tokens of one deployment (one key, shared by its processes)."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a page-token key is at least {MIN_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def ephemeral(cls) -> PageTokens:
        """Tokens signed with a fresh random key: good for this process's lifetime only."""
        return cls(secrets.token_bytes(32))

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, query: Mapping[str, Any], cursor: Mapping[str, Any]) -> str:
        """Wrap a backend cursor so it only works for the same query, signed."""
        body = json.dumps({"q": _query_id(query), "c": cursor}, separators=(",", ":"))
        payload = _b64(body.encode("utf-8"))
        return f"{payload}.{_b64(self._mac(payload))}"

    def decode(self, token: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """The cursor of a token this deployment issued for `query`, or ValidationError."""
        if len(token) > MAX_TOKEN_LENGTH or not matches(_TOKEN, token):
            raise ValidationError("next_token is not valid", field="next_token")
        payload, _, mac = token.partition(".")
        try:
            given = _unb64(mac)
        except (binascii.Error, ValueError) as e:
            raise ValidationError("next_token is not valid", field="next_token") from e
        if not hmac.compare_digest(given, self._mac(payload)):
            raise ValidationError("next_token is not valid", field="next_token")
        # Signed by us, so well-formed: what is left to check is the query it belongs to.
        decoded: dict[str, Any] = json.loads(_unb64(payload))
        if decoded.get("q") != _query_id(query):
            raise ValidationError("next_token does not belong to this query", field="next_token")
        cursor: dict[str, Any] = decoded["c"]
        return cursor
