"""The SNS notifier on moto: one transactional SMS per message, AWS trouble as a retryable error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from adapters.aws import sns as sns_adapter
from adapters.aws.sns import SmsRefused, SNSNotifier
from domain.errors import TemporarilyUnavailable
from entrypoints.bootstrap import build_container
from entrypoints.config import Settings
from ports.messaging import Notifier, OutboundMessage

REGION = "us-east-1"
PHONE = "+51987650001"
TEXT = "Hola, tu cita con Dra. Rosa Quispe del miércoles 2 de diciembre, 10:00 fue cancelada."


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SNS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("sns", region_name=REGION)


def sms(phone: str, channel: str = "sms") -> OutboundMessage:
    return OutboundMessage(
        channel=channel,  # type: ignore[arg-type]
        phone=phone,
        text=TEXT,
        clinic_id="demo",
        appointment_id="a-1",
    )


def sent() -> list[tuple[str, str]]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def test_a_message_is_one_transactional_sms_to_the_patients_phone(sns: Any) -> None:
    calls: list[dict[str, Any]] = []
    sns.meta.events.register(
        "before-parameter-build.sns.Publish", lambda params, **_: calls.append(dict(params))
    )

    SNSNotifier(sns).send(sms(PHONE))

    assert sent() == [(PHONE, TEXT)]
    (call,) = calls
    assert call["MessageAttributes"] == {
        "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}
    }
    assert "TopicArn" not in call


def test_no_client_is_built_until_the_first_message(
    sns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = sns_adapter.default_client

    def counting() -> Any:
        built.append("sns")
        return real()

    monkeypatch.setattr(sns_adapter, "default_client", counting)
    notifier = SNSNotifier()
    assert built == []
    notifier.send(sms(PHONE))
    notifier.send(sms(PHONE))
    assert built == ["sns"]
    assert len(sent()) == 2


@pytest.mark.parametrize("code", ["Throttling", "InternalError", "ServiceUnavailable"])
def test_throttling_and_outages_are_temporarily_unavailable(sns: Any, code: str) -> None:
    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {}}, "Publish"
        )

    sns.meta.events.register("before-call.sns.Publish", refuse)
    with pytest.raises(TemporarilyUnavailable) as raised:
        SNSNotifier(sns).send(sms(PHONE))
    assert raised.value.details["service"] == "sns"


def test_an_unreachable_sns_is_temporarily_unavailable(sns: Any) -> None:
    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com")

    sns.meta.events.register("before-call.sns.Publish", unreachable)
    with pytest.raises(TemporarilyUnavailable):
        SNSNotifier(sns).send(sms(PHONE))


def test_a_refused_number_is_not_retried_as_if_sns_were_busy_and_is_not_quoted(sns: Any) -> None:
    with pytest.raises(SmsRefused) as raised:
        SNSNotifier(sns).send(sms("+0000-not-a-phone"))
    assert str(raised.value) == "sns refused the message: InvalidParameter"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_sns_has_no_whatsapp_so_a_whatsapp_message_is_refused_for_the_sms_fallback(
    sns: Any,
) -> None:
    with pytest.raises(SmsRefused):
        SNSNotifier(sns).send(sms(PHONE, channel="whatsapp"))
    assert sent() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("memory", "InMemoryNotifier"),
        ("console", "ConsoleNotifier"),
        ("sns", "SNSNotifier"),
        ("aws", "ChannelNotifier"),
    ],
)
def test_the_container_registers_the_configured_notifier(
    sns: Any, value: str, expected: str
) -> None:
    settings = Settings.from_env({"CITAS_NOTIFIER": value})
    assert type(build_container(settings).resolve(Notifier)).__name__ == expected


def test_the_notifier_defaults_to_the_console_and_refuses_unknown_kinds() -> None:
    assert Settings.from_env({}).notifier == "console"
    assert Settings.from_env({"CITAS_NOTIFIER": " SNS "}).notifier == "sns"
    with pytest.raises(ValueError, match="CITAS_NOTIFIER"):
        Settings.from_env({"CITAS_NOTIFIER": "pigeon"})


def test_a_worker_country_must_be_served() -> None:
    assert Settings.from_env({}).worker_country is None
    assert Settings.from_env({"CITAS_WORKER_COUNTRY": "cl"}).worker_country == "CL"
    with pytest.raises(ValueError, match="CITAS_WORKER_COUNTRY"):
        Settings.from_env({"CITAS_WORKER_COUNTRY": "AR"})
