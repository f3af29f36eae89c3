"""The link key ring from SSM or Secrets Manager, on real boto3 clients with botocore's Stubber."""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import boto3
import pytest
from botocore.stub import Stubber

from adapters.aws import link_keys
from adapters.aws.client import CLIENT_CONFIG
from adapters.aws.link_keys import SecretsManagerLinkKeys, SsmLinkKeys, parse_key_ring
from domain.errors import TemporarilyUnavailable
from domain.links import KeyRing, LinkClaims, Purpose, mint, verify

REGION = "us-east-1"
PARAMETER = "/citas-prod/link-keys"
SECRET_ID = "citas-prod/link-keys"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{SECRET_ID}-AbCdEf"
OLD = bytes(range(32))
NEW = bytes(range(100, 124))
OLD_B64URL = base64.urlsafe_b64encode(OLD).rstrip(b"=").decode()
NEW_B64 = base64.b64encode(NEW).decode()


def ring_text(current: str = "k2", **keys: str) -> str:
    return json.dumps({"current": current, "keys": keys or {"k1": OLD_B64URL, "k2": NEW_B64}})


ROTATED = json.dumps({"current": "k3", "keys": {"k2": NEW_B64, "k3": OLD_B64URL}})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)


def _client(service: Literal["ssm", "secretsmanager"]) -> Any:
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def ssm() -> Iterator[tuple[Any, Stubber]]:
    client = _client("ssm")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def secrets() -> Iterator[tuple[Any, Stubber]]:
    client = _client("secretsmanager")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def parameter(value: str, kind: str = "SecureString") -> dict[str, Any]:
    return {"Parameter": {"Name": PARAMETER, "Type": kind, "Value": value, "Version": 3}}


def secret(value: str) -> dict[str, Any]:
    return {
        "ARN": SECRET_ARN,
        "Name": SECRET_ID,
        "VersionId": "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
        "SecretString": value,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": datetime(2026, 1, 1, tzinfo=UTC),
    }


GET_PARAMETER = {"Name": PARAMETER, "WithDecryption": True}
GET_SECRET = {"SecretId": SECRET_ID}


def formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


# --- parsing -------------------------------------------------------------------------------


def test_a_key_ring_has_its_current_key_and_accepts_every_key() -> None:
    ring = parse_key_ring(ring_text())
    assert ring.current.key_id == "k2"
    assert ring.current.secret == NEW
    old = ring.key("k1")
    assert old is not None and old.secret == OLD
    assert ring.key("k3") is None


def test_a_parsed_ring_signs_and_verifies_links() -> None:
    ring = parse_key_ring(ring_text())
    claims = LinkClaims("sol", "a-1", Purpose.MANAGE, datetime(2030, 1, 1, tzinfo=UTC))
    token = mint(ring, claims)
    assert verify(ring, token, purpose=Purpose.MANAGE, now=datetime(2029, 1, 1, tzinfo=UTC))
    # A ring read before the rotation does not know the key the new ring signs with.
    old_ring = parse_key_ring(ring_text(current="k1", k1=OLD_B64URL))
    assert old_ring.key(ring.current.key_id) is None


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(OLD).decode(),  # padded base64url
        OLD_B64URL,  # unpadded base64url
        base64.b64encode(OLD).decode(),  # padded standard base64
        base64.b64encode(OLD).decode().rstrip("="),  # unpadded standard base64
    ],
)
def test_a_secret_may_be_base64url_or_base64_padded_or_not(text: str) -> None:
    assert parse_key_ring(ring_text(current="k1", k1=text)).current.secret == OLD


# A secret that must not appear in any message about the rings that hold it.
LEAK = "c2VjcmV0LXRoYXQtbXVzdC1ub3QtbGVhaw"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"current": "k1", "keys": {"k1": "' + LEAK, "not JSON"),
        (json.dumps([LEAK]), "not a JSON object"),
        (json.dumps({"current": "k1"}), '"keys"'),
        (json.dumps({"current": "k1", "keys": {}}), '"keys"'),
        (json.dumps({"current": "k1", "keys": [LEAK]}), '"keys"'),
        (json.dumps({"current": "k9", "keys": {"k1": LEAK}}), "'k9' is not in"),
        (json.dumps({"keys": {"k1": LEAK}}), '"current" is not a key id'),
        (json.dumps({"current": LEAK, "keys": {"k1": LEAK}}), '"current" is not a key id'),
        (json.dumps({"current": "k1", "keys": {"k1": LEAK[:20]}}), "shorter than 16 bytes"),
        (json.dumps({"current": "k1", "keys": {"k1": LEAK + "!"}}), "not base64"),
        (json.dumps({"current": "k1", "keys": {"k1": LEAK + "+-"}}), "not base64"),
        (json.dumps({"current": "k1", "keys": {"k1": LEAK + "==="}}), "not base64"),
        (json.dumps({"current": "k1", "keys": {"k1": 12345}}), "not a base64 string"),
        (json.dumps({"current": "K1", "keys": {"K1": LEAK}}), "key id is not"),
        (json.dumps({"current": "k1", "keys": {"k1": LEAK, LEAK: "k1"}}), "key id is not"),
        (json.dumps({"current": "toolongid", "keys": {"toolongid": LEAK}}), "key id is not"),
    ],
)
def test_anything_but_a_key_ring_is_refused_without_quoting_it(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_key_ring(text)
    message = str(raised.value)
    assert reason in message
    assert LEAK not in formatted(raised.value)
    assert LEAK[:20] not in message
    assert "K1" not in message and "toolongid" not in message


# --- SSM -----------------------------------------------------------------------------------


def test_the_ring_is_read_from_the_decrypted_parameter_once(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    # One response only: a second read would fail with the stubber's own error.
    stubber.add_response("get_parameter", parameter(ring_text()), GET_PARAMETER)
    keys = SsmLinkKeys(PARAMETER, client)
    first = keys.key_ring()
    assert keys.key_ring() is first
    assert first.current.key_id == "k2"


def test_refresh_reads_again_at_most_once_per_interval(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_response("get_parameter", parameter(ring_text()), GET_PARAMETER)
    stubber.add_response("get_parameter", parameter(ROTATED), GET_PARAMETER)
    clock = Clock()
    keys = SsmLinkKeys(PARAMETER, client, clock=clock, refresh_seconds=300)
    before = keys.key_ring()

    clock.now += 299
    assert keys.refresh() is before  # under an interval since the first read: no call

    clock.now += 1
    after = keys.refresh()
    assert after.current.key_id == "k3"
    assert keys.key_ring() is after

    clock.now += 299
    assert keys.refresh() is after


def test_refresh_reads_when_nothing_was_read_yet(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_response("get_parameter", parameter(ring_text()), GET_PARAMETER)
    keys = SsmLinkKeys(PARAMETER, client, clock=Clock())
    assert keys.refresh().current.key_id == "k2"


def test_a_throttled_first_read_is_tried_again_by_the_next_use(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_client_error("get_parameter", "ThrottlingException", http_status_code=400)
    stubber.add_response("get_parameter", parameter(ring_text()), GET_PARAMETER)
    keys = SsmLinkKeys(PARAMETER, client, clock=Clock())
    with pytest.raises(TemporarilyUnavailable) as raised:
        keys.key_ring()
    assert raised.value.details == {"service": "ssm"}
    # Nothing to answer with yet, so no interval applies.
    assert keys.key_ring().current.key_id == "k2"


def test_a_throttled_refresh_is_not_retried_by_every_unknown_key_id(
    ssm: tuple[Any, Stubber],
) -> None:
    client, stubber = ssm
    stubber.add_response("get_parameter", parameter(ring_text()), GET_PARAMETER)
    stubber.add_client_error("get_parameter", "InternalServerError", http_status_code=500)
    clock = Clock()
    keys = SsmLinkKeys(PARAMETER, client, clock=clock, refresh_seconds=300)
    ring = keys.key_ring()
    clock.now += 300
    with pytest.raises(TemporarilyUnavailable):
        keys.refresh()
    clock.now += 10
    assert keys.refresh() is ring
    assert keys.key_ring() is ring


@pytest.mark.parametrize("code", ["ParameterNotFound", "AccessDeniedException", "InvalidKeyId"])
def test_an_unreadable_parameter_is_a_deployment_bug_naming_it(
    ssm: tuple[Any, Stubber], code: str
) -> None:
    client, stubber = ssm
    stubber.add_client_error("get_parameter", code, http_status_code=400)
    with pytest.raises(RuntimeError) as raised:
        SsmLinkKeys(PARAMETER, client).key_ring()
    assert str(raised.value) == f"cannot read the link keys from SSM parameter {PARAMETER}: {code}"


def test_a_parameter_that_is_no_key_ring_names_the_parameter_not_the_value(
    ssm: tuple[Any, Stubber],
) -> None:
    client, stubber = ssm
    stubber.add_response("get_parameter", parameter('{"current": "k1", "keys": "' + LEAK))
    with pytest.raises(RuntimeError) as raised:
        SsmLinkKeys(PARAMETER, client).key_ring()
    assert str(raised.value) == (
        f"SSM parameter {PARAMETER} does not hold a link key ring: the link key ring is not JSON"
    )
    assert isinstance(raised.value.__cause__, ValueError)
    assert LEAK not in formatted(raised.value)


def test_a_plain_string_parameter_is_refused(ssm: tuple[Any, Stubber]) -> None:
    client, stubber = ssm
    stubber.add_response("get_parameter", parameter(ring_text(), kind="String"), GET_PARAMETER)
    with pytest.raises(RuntimeError, match="is not a SecureString") as raised:
        SsmLinkKeys(PARAMETER, client).key_ring()
    assert NEW_B64 not in formatted(raised.value)


def test_no_ssm_client_is_built_until_the_ring_is_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client("ssm")
    built: list[str] = []

    def factory() -> Any:
        built.append("ssm")
        return client

    monkeypatch.setattr(link_keys, "default_ssm_client", factory)
    keys = SsmLinkKeys(PARAMETER)
    assert built == []
    with Stubber(client) as stubber:
        stubber.add_response("get_parameter", parameter(ring_text()), GET_PARAMETER)
        assert isinstance(keys.key_ring(), KeyRing)
    assert built == ["ssm"]


def test_a_negative_refresh_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="refresh_seconds"):
        SsmLinkKeys(PARAMETER, _client("ssm"), refresh_seconds=-1)


# --- Secrets Manager -----------------------------------------------------------------------


def test_the_ring_is_read_from_the_secret_string_once(secrets: tuple[Any, Stubber]) -> None:
    client, stubber = secrets
    stubber.add_response("get_secret_value", secret(ring_text()), GET_SECRET)
    keys = SecretsManagerLinkKeys(SECRET_ID, client)
    first = keys.key_ring()
    assert keys.key_ring() is first
    assert first.current.secret == NEW


def test_a_rotated_secret_is_seen_by_refresh_after_the_interval(
    secrets: tuple[Any, Stubber],
) -> None:
    client, stubber = secrets
    stubber.add_response("get_secret_value", secret(ring_text()), GET_SECRET)
    stubber.add_response("get_secret_value", secret(ROTATED), GET_SECRET)
    clock = Clock()
    keys = SecretsManagerLinkKeys(SECRET_ID, client, clock=clock, refresh_seconds=60)
    assert keys.key_ring().key("k3") is None
    assert keys.refresh().key("k3") is None  # within the interval: the same ring
    clock.now += 60
    assert keys.refresh().current.key_id == "k3"


@pytest.mark.parametrize(
    ("code", "status"),
    [("ThrottlingException", 400), ("InternalServiceError", 500), ("InternalServiceError", 400)],
)
def test_secrets_manager_outages_are_temporarily_unavailable(
    secrets: tuple[Any, Stubber], code: str, status: int
) -> None:
    client, stubber = secrets
    stubber.add_client_error("get_secret_value", code, http_status_code=status)
    with pytest.raises(TemporarilyUnavailable) as raised:
        SecretsManagerLinkKeys(SECRET_ID, client).key_ring()
    assert raised.value.details == {"service": "secretsmanager"}


@pytest.mark.parametrize(
    "code", ["ResourceNotFoundException", "DecryptionFailure", "InvalidRequestException"]
)
def test_an_unreadable_secret_is_a_deployment_bug_naming_it(
    secrets: tuple[Any, Stubber], code: str
) -> None:
    client, stubber = secrets
    stubber.add_client_error("get_secret_value", code, http_status_code=400)
    with pytest.raises(RuntimeError) as raised:
        SecretsManagerLinkKeys(SECRET_ID, client).key_ring()
    assert str(raised.value) == f"cannot read the link keys from secret {SECRET_ID}: {code}"


def test_a_binary_secret_is_refused(secrets: tuple[Any, Stubber]) -> None:
    client, stubber = secrets
    response = secret("unused")
    del response["SecretString"]
    response["SecretBinary"] = ring_text().encode()
    stubber.add_response("get_secret_value", response, GET_SECRET)
    with pytest.raises(RuntimeError, match=f"secret {SECRET_ID} has no SecretString"):
        SecretsManagerLinkKeys(SECRET_ID, client).key_ring()


def test_a_secret_with_a_short_key_names_the_secret_and_the_key_not_the_value(
    secrets: tuple[Any, Stubber],
) -> None:
    client, stubber = secrets
    short = base64.b64encode(b"fifteen bytes!!").decode()
    stubber.add_response("get_secret_value", secret(ring_text(current="k1", k1=short)))
    with pytest.raises(RuntimeError) as raised:
        SecretsManagerLinkKeys(SECRET_ID, client).key_ring()
    assert str(raised.value) == (
        f"secret {SECRET_ID} does not hold a link key ring: link key 'k1' is shorter than 16 bytes"
    )
    assert short not in formatted(raised.value)


# --- clients -------------------------------------------------------------------------------


def test_the_default_clients_take_their_endpoints_and_the_shared_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:4003")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4004")
    ssm_client = link_keys.default_ssm_client()
    secrets_client = link_keys.default_secrets_client()
    assert ssm_client.meta.endpoint_url == "http://127.0.0.1:4003"
    assert secrets_client.meta.endpoint_url == "http://127.0.0.1:4004"
    # botocore-stubs does not declare Config's options as attributes.
    shared: Any = CLIENT_CONFIG
    for client in (ssm_client, secrets_client):
        config: Any = client.meta.config
        assert config.read_timeout == shared.read_timeout == 5
        assert config.retries["mode"] == "standard"
