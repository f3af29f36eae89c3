"""Opaque page tokens: a backend cursor bound to the query that produced it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from domain.errors import ValidationError


def _query_id(query: Mapping[str, Any]) -> str:
    canonical = json.dumps(query, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_token(query: Mapping[str, Any], cursor: Mapping[str, Any]) -> str:
    """Wrap a backend cursor so it only works for the same query."""
    payload = json.dumps({"q": _query_id(query), "c": cursor}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_token(token: str, query: Mapping[str, Any]) -> dict[str, Any]:
    """Unwrap a token, or raise ValidationError if it is malformed or from another query."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError) as e:
        raise ValidationError("next_token is not valid", field="next_token") from e
    if (
        not isinstance(payload, dict)
        or payload.get("q") != _query_id(query)
        or not isinstance(payload.get("c"), dict)
    ):
        raise ValidationError("next_token does not belong to this query", field="next_token")
    cursor: dict[str, Any] = payload["c"]
    return cursor
