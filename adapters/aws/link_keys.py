"""The link-signing key ring, read from the deployment's secret store once per container.

The secret (an SSM SecureString parameter or a Secrets Manager secret string) holds the JSON

    {"current": "<key id>", "keys": {"<key id>": "<secret: base64url or base64>", ...}}

where every key id is what `domain.links.KEY_ID` allows, every secret decodes to at least
`domain.links.MIN_SECRET_BYTES` bytes and `current` (the key that signs new links) is one of
`keys` (every key still accepted). Rotating is: add a key, make it current, and remove the old
one once the links it signed have expired.

The ring is read on first use and kept: signing and verifying a link costs no call. A
container that read the ring before a rotation does not know the new key, so the use case
calls `refresh()` when a token names a key id the ring lacks; that reads the secret again at
most once per `refresh_seconds`, so a stream of forged key ids costs one read per interval.

Throttling and outages are `TemporarilyUnavailable`; a secret that is missing, unreadable or
not a key ring is a deployment bug, a RuntimeError naming the parameter and never its value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from adapters.aws.client import CLIENT_CONFIG, LazyClient, error_code, lazy, translate_errors
from domain.errors import TemporarilyUnavailable
from domain.links import KEY_ID, MIN_SECRET_BYTES, KeyRing, LinkKey

if TYPE_CHECKING:
    from typing import TypeAlias

    from mypy_boto3_ssm.client import SSMClient

    # boto3-stubs is installed without its secretsmanager extra: this client is untyped
    # rather than a new dev dependency.
    SecretsManagerClient: TypeAlias = Any

DEFAULT_REFRESH_SECONDS: Final = 300.0
# Secrets Manager's 500 is InternalServiceError, a code client.RETRYABLE_CODES does not list;
# named so that an answer without its status (a proxy, a stub) still reads as an outage.
_ALSO_RETRYABLE: Final = frozenset({"InternalServiceError"})
# Either base64 alphabet, padded or not; both at once is a mistake, not a third alphabet.
_STANDARD: Final = re.compile(r"[A-Za-z0-9+/]+")
_URLSAFE: Final = re.compile(r"[A-Za-z0-9_-]+")


def default_ssm_client() -> SSMClient:
    """An SSM client from the standard AWS environment (`AWS_ENDPOINT_URL_SSM`, ...)."""
    return boto3.client("ssm", config=CLIENT_CONFIG)


def default_secrets_client() -> SecretsManagerClient:
    """A Secrets Manager client (`AWS_ENDPOINT_URL_SECRETS_MANAGER`, ...)."""
    return boto3.client("secretsmanager", config=CLIENT_CONFIG)


# --- parsing -------------------------------------------------------------------------------


def parse_key_ring(text: str) -> KeyRing:
    """The key ring the secret's JSON `text` describes; ValueError if it is not one.

    No message quotes the text. A key id is named only once it matched KEY_ID: at most 8
    characters, it cannot be a secret of 16 bytes or more put in the wrong place.
    """
    try:
        data: Any = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        # `from None`: a JSONDecodeError carries the whole document.
        raise ValueError("the link key ring is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the link key ring is not a JSON object")
    current, keys = data.get("current"), data.get("keys")
    if not isinstance(keys, dict) or not keys:
        raise ValueError('the link key ring has no "keys" object with at least one key')
    ring = {key_id: _link_key(key_id, secret) for key_id, secret in keys.items()}
    if not isinstance(current, str) or not KEY_ID.fullmatch(current):
        raise ValueError('the link key ring\'s "current" is not a key id')
    if current not in ring:
        raise ValueError(f'the link key ring\'s "current" key {current!r} is not in "keys"')
    return KeyRing(current=ring[current], accepted=ring)


def _link_key(key_id: object, secret: object) -> LinkKey:
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        raise ValueError("a link key id is not 1-8 lower-case letters or digits")
    if not isinstance(secret, str):
        raise ValueError(f"link key {key_id!r} is not a base64 string")
    raw = _decode_secret(secret)
    if raw is None:
        raise ValueError(f"link key {key_id!r} is not base64url or base64")
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(f"link key {key_id!r} is shorter than {MIN_SECRET_BYTES} bytes")
    return LinkKey(key_id=key_id, secret=raw)


def _decode_secret(text: str) -> bytes | None:
    """The bytes of base64url or base64 `text`, padded or not; None if it is neither."""
    bare = text.rstrip("=")
    if len(text) - len(bare) > 2 or len(bare) % 4 == 1:
        return None
    if _URLSAFE.fullmatch(bare):
        altchars = b"-_"
    elif _STANDARD.fullmatch(bare):
        altchars = b"+/"
    else:
        return None
    try:
        return base64.b64decode(bare + "=" * (-len(bare) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


# --- reading -------------------------------------------------------------------------------


class _StoredKeyRing:
    """A key ring read from one stored secret on first use, then kept and refreshed."""

    kind: str
    service: str

    def __init__(self, name: str, clock: Callable[[], float], refresh_seconds: float) -> None:
        if refresh_seconds < 0:
            raise ValueError(f"refresh_seconds must be 0 or more, got {refresh_seconds!r}")
        self.name = name
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._ring: KeyRing | None = None
        self._read_at: float | None = None

    def key_ring(self) -> KeyRing:
        """The ring as last read; read now if it never was."""
        ring = self._ring
        if ring is not None:
            return ring
        with self._lock:
            if self._ring is None:
                self._read_at = self._clock()
                self._ring = self._load()
            return self._ring

    def refresh(self) -> KeyRing:
        """The ring read again, unless the last read (or try) is under an interval old."""
        with self._lock:
            now = self._clock()
            recent = self._read_at is not None and now - self._read_at < self.refresh_seconds
            if self._ring is not None and recent:
                return self._ring
            # Counted before the call: a read that fails (throttled) is not tried again by
            # every unknown key id of the interval.
            self._read_at = now
            self._ring = self._load()
            return self._ring

    def _load(self) -> KeyRing:
        text = self._read_text()
        try:
            return parse_key_ring(text)
        except ValueError as e:
            raise RuntimeError(f"{self.kind} {self.name} does not hold a link key ring: {e}") from e

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Outages as TemporarilyUnavailable; any other AWS refusal as a RuntimeError."""
        try:
            with translate_errors(self.service):
                try:
                    yield
                except ClientError as e:
                    if error_code(e) in _ALSO_RETRYABLE:
                        raise TemporarilyUnavailable(
                            f"{self.service} is busy or unavailable, retry shortly",
                            service=self.service,
                        ) from e
                    raise
        except ClientError as e:
            # Missing, not granted, not decryptable: no retry fixes the deployment.
            raise RuntimeError(
                f"cannot read the link keys from {self.kind} {self.name}: {error_code(e)}"
            ) from e

    def _read_text(self) -> str:
        raise NotImplementedError


class SsmLinkKeys(_StoredKeyRing):
    """The link key ring in an SSM Parameter Store SecureString parameter."""

    kind = "SSM parameter"
    service = "ssm"

    def __init__(
        self,
        parameter_name: str,
        client: SSMClient | LazyClient[SSMClient] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        super().__init__(parameter_name, clock, refresh_seconds)
        self._client = lazy(client, default_ssm_client)

    def _read_text(self) -> str:
        with self._reading():
            response = self._client().get_parameter(Name=self.name, WithDecryption=True)
        parameter = response.get("Parameter", {})
        if parameter.get("Type") != "SecureString":
            # A String parameter is stored and shown in clear: signing keys never are.
            raise RuntimeError(f"{self.kind} {self.name} is not a SecureString")
        return str(parameter.get("Value", ""))


class SecretsManagerLinkKeys(_StoredKeyRing):
    """The link key ring in a Secrets Manager secret's SecretString (its current version)."""

    kind = "secret"
    service = "secretsmanager"

    def __init__(
        self,
        secret_id: str,
        client: SecretsManagerClient | LazyClient[SecretsManagerClient] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        super().__init__(secret_id, clock, refresh_seconds)
        self._client = lazy(client, default_secrets_client)

    def _read_text(self) -> str:
        with self._reading():
            response = self._client().get_secret_value(SecretId=self.name)
        text = response.get("SecretString")
        if not isinstance(text, str):
            raise RuntimeError(f"{self.kind} {self.name} has no SecretString")
        return text
