"""The End User Messaging notifiers on real boto3 clients with botocore's Stubber.

Every request goes through the client's own parameter validation against the service model,
so a misspelt or mistyped parameter fails here as it would on AWS.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from typing import Any, Literal

import attrs
import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from adapters.aws import messaging
from adapters.aws.client import CLIENT_CONFIG
from adapters.aws.messaging import (
    ChannelMisconfigured,
    ChannelNotifier,
    EndUserSmsNotifier,
    WhatsAppNotifier,
    template_message,
)
from domain.errors import TemporarilyUnavailable
from ports.messaging import MessageRefused, Notifier, OutboundMessage

REGION = "us-east-1"
PHONE = "+51987650001"
TEXT = "Clínica Sol: Hola, tu cita con Dra. Rosa Quispe del miércoles 2, 10:00 fue confirmada."
SMS_ORIGIN = "pool-0123456789abcdef0123456789abcdef"
WA_ORIGIN = "phone-number-id-0123456789abcdef0123456789abcdef"
WA_DEFAULT = "phone-number-id-ffffffffffffffffffffffffffffffff"


@pytest.fixture(autouse=True)
def _no_endpoint_override(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2",
        "AWS_ENDPOINT_URL_SOCIALMESSAGING",
    ):
        monkeypatch.delenv(name, raising=False)


def _client(service: Literal["pinpoint-sms-voice-v2", "socialmessaging"]) -> Any:
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def sms() -> Iterator[tuple[Any, Stubber]]:
    client = _client("pinpoint-sms-voice-v2")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def whatsapp() -> Iterator[tuple[Any, Stubber]]:
    client = _client("socialmessaging")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


class Captured:
    """An expected parameter that matches anything and keeps what it was compared with."""

    def __init__(self) -> None:
        self.value: Any = None

    def __eq__(self, other: object) -> bool:
        self.value = other
        return True

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


def sms_message(**changes: Any) -> OutboundMessage:
    base = OutboundMessage(
        channel="sms",
        phone=PHONE,
        text=TEXT,
        clinic_id="sol",
        appointment_id="0190f6a2-7c3e-7b1a-9d2e-123456789abc",
    )
    return attrs.evolve(base, **changes)


def wa_message(**changes: Any) -> OutboundMessage:
    base = OutboundMessage(
        channel="whatsapp",
        phone=PHONE,
        text=TEXT,
        clinic_id="sol",
        appointment_id="0190f6a2-7c3e-7b1a-9d2e-123456789abc",
        link="https://citas.example/l/AbCdEfGh12345678",
        template="cita_confirmada",
        parameters=("Clínica Sol", "Dra. Rosa Quispe", "miércoles 2 de diciembre, 10:00"),
        buttons=("confirm:AbCdEfGh12345678", "cancel:AbCdEfGh12345678", "move:AbCdEfGh1234"),
        origin=WA_ORIGIN,
    )
    return attrs.evolve(base, **changes)


def formatted(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


# --- SMS -----------------------------------------------------------------------------------


def test_an_sms_is_one_transactional_text_message_with_ids_as_context(
    sms: tuple[Any, Stubber],
) -> None:
    client, stubber = sms
    stubber.add_response(
        "send_text_message",
        {"MessageId": "sms-msg-1"},
        {
            "DestinationPhoneNumber": PHONE,
            "OriginationIdentity": SMS_ORIGIN,
            "MessageBody": TEXT,
            "MessageType": "TRANSACTIONAL",
            "ConfigurationSetName": "citas-events",
            "Context": {
                "clinic_id": "sol",
                "appointment_id": "0190f6a2-7c3e-7b1a-9d2e-123456789abc",
            },
        },
    )
    notifier = EndUserSmsNotifier(
        client, default_origin="pool-default", configuration_set="citas-events"
    )
    assert notifier.send(sms_message(origin=SMS_ORIGIN)) == "sms-msg-1"


def test_the_deployments_origin_is_used_when_the_clinic_has_none(
    sms: tuple[Any, Stubber],
) -> None:
    client, stubber = sms
    stubber.add_response(
        "send_text_message",
        {"MessageId": "sms-msg-2"},
        {
            "DestinationPhoneNumber": PHONE,
            "OriginationIdentity": "pool-default",
            "MessageBody": TEXT,
            "MessageType": "TRANSACTIONAL",
            "Context": {"clinic_id": "sol"},
        },
    )
    notifier = EndUserSmsNotifier(client, default_origin="pool-default")
    assert notifier.send(sms_message(appointment_id=None)) == "sms-msg-2"


def test_without_any_origin_the_identity_is_left_to_aws(sms: tuple[Any, Stubber]) -> None:
    client, stubber = sms
    stubber.add_response(
        "send_text_message",
        {"MessageId": "sms-msg-3"},
        {
            "DestinationPhoneNumber": PHONE,
            "MessageBody": TEXT,
            "MessageType": "TRANSACTIONAL",
            "Context": {
                "clinic_id": "sol",
                "appointment_id": "0190f6a2-7c3e-7b1a-9d2e-123456789abc",
            },
        },
    )
    assert EndUserSmsNotifier(client, default_origin=None).send(sms_message()) == "sms-msg-3"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("InternalServerException", 500),
        ("InternalServerException", 400),
    ],
)
def test_sms_throttling_and_outages_are_temporarily_unavailable(
    sms: tuple[Any, Stubber], code: str, status: int
) -> None:
    client, stubber = sms
    stubber.add_client_error("send_text_message", code, "injected", http_status_code=status)
    with pytest.raises(TemporarilyUnavailable) as raised:
        EndUserSmsNotifier(client, default_origin=None).send(sms_message())
    assert raised.value.details["service"] == "pinpoint-sms-voice-v2"


@pytest.mark.parametrize("code", ["ValidationException", "ConflictException"])
def test_an_sms_refusal_carries_only_the_code(sms: tuple[Any, Stubber], code: str) -> None:
    client, stubber = sms
    stubber.add_client_error(
        "send_text_message", code, f"Destination {PHONE} is opted out", http_status_code=400
    )
    with pytest.raises(MessageRefused) as raised:
        EndUserSmsNotifier(client, default_origin=None).send(sms_message())
    assert str(raised.value) == f"pinpoint-sms-voice-v2 refused the message: {code}"
    assert PHONE not in formatted(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_an_unreachable_sms_service_is_temporarily_unavailable() -> None:
    client = _client("pinpoint-sms-voice-v2")

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://sms-voice.us-east-1.amazonaws.com")

    client.meta.events.register("before-call.*.SendTextMessage", unreachable)
    with pytest.raises(TemporarilyUnavailable):
        EndUserSmsNotifier(client, default_origin=None).send(sms_message())


def test_the_sms_notifier_sends_no_whatsapp_message(sms: tuple[Any, Stubber]) -> None:
    client, _ = sms
    # No response is queued: a call would fail with the stubber's own error, not this one.
    with pytest.raises(ValueError, match="whatsapp message given to the sms notifier"):
        EndUserSmsNotifier(client, default_origin=None).send(wa_message())


def test_no_sms_client_is_built_until_the_first_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = _client("pinpoint-sms-voice-v2")
    built: list[str] = []

    def factory() -> Any:
        built.append("sms")
        return client

    monkeypatch.setattr(messaging, "default_sms_client", factory)
    notifier = EndUserSmsNotifier(default_origin=None)
    assert built == []
    with Stubber(client) as stubber:
        stubber.add_response("send_text_message", {"MessageId": "a"})
        stubber.add_response("send_text_message", {"MessageId": "b"})
        assert [notifier.send(sms_message()), notifier.send(sms_message())] == ["a", "b"]
    assert built == ["sms"]


# --- WhatsApp ------------------------------------------------------------------------------


def test_a_whatsapp_message_is_the_template_with_its_parameters_and_buttons(
    whatsapp: tuple[Any, Stubber],
) -> None:
    client, stubber = whatsapp
    body = Captured()
    stubber.add_response(
        "send_whatsapp_message",
        {"messageId": "wamid.HBgLNTE5ODc2NTAwMDEVAgARGBI"},
        {"originationPhoneNumberId": WA_ORIGIN, "metaApiVersion": "v20.0", "message": body},
    )
    notifier = WhatsAppNotifier(client, default_origin=WA_DEFAULT)

    assert notifier.send(wa_message()) == "wamid.HBgLNTE5ODc2NTAwMDEVAgARGBI"

    assert isinstance(body.value, bytes)
    sent = json.loads(body.value.decode("utf-8"))
    assert sent["messaging_product"] == "whatsapp"
    assert sent["recipient_type"] == "individual"
    assert sent["to"] == PHONE
    assert sent["type"] == "template"
    template = sent["template"]
    assert template["name"] == "cita_confirmada"
    assert template["language"] == {"code": "es"}
    body_component, *buttons = template["components"]
    assert body_component == {
        "type": "body",
        "parameters": [
            {"type": "text", "text": "Clínica Sol"},
            {"type": "text", "text": "Dra. Rosa Quispe"},
            {"type": "text", "text": "miércoles 2 de diciembre, 10:00"},
        ],
    }
    assert buttons == [
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "confirm:AbCdEfGh12345678"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "1",
            "parameters": [{"type": "payload", "payload": "cancel:AbCdEfGh12345678"}],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "2",
            "parameters": [{"type": "payload", "payload": "move:AbCdEfGh1234"}],
        },
    ]
    # The SMS text and the link are not part of the template message.
    assert set(sent) == {"messaging_product", "recipient_type", "to", "type", "template"}
    assert TEXT not in body.value.decode("utf-8")


def test_the_deployments_number_id_and_api_version_are_used_when_the_message_has_none(
    whatsapp: tuple[Any, Stubber],
) -> None:
    client, stubber = whatsapp
    body = Captured()
    stubber.add_response(
        "send_whatsapp_message",
        {"messageId": "wamid.2"},
        {"originationPhoneNumberId": WA_DEFAULT, "metaApiVersion": "v21.0", "message": body},
    )
    notifier = WhatsAppNotifier(client, default_origin=WA_DEFAULT, meta_api_version="v21.0")
    message = wa_message(origin=None, parameters=(), buttons=(), language="es_PE")
    assert notifier.send(message) == "wamid.2"
    # A template without variables or buttons has no components at all.
    assert json.loads(body.value)["template"] == {
        "name": "cita_confirmada",
        "language": {"code": "es_PE"},
    }


def test_a_whatsapp_message_without_a_template_is_a_plain_text_reply(
    whatsapp: tuple[Any, Stubber],
) -> None:
    client, stubber = whatsapp
    body = Captured()
    stubber.add_response(
        "send_whatsapp_message",
        {"messageId": "wamid.reply"},
        {"originationPhoneNumberId": WA_ORIGIN, "metaApiVersion": "v20.0", "message": body},
    )
    notifier = WhatsAppNotifier(client, default_origin=WA_DEFAULT)
    assert notifier.send(wa_message(template=None, parameters=(), buttons=())) == "wamid.reply"
    assert isinstance(body.value, bytes)
    assert json.loads(body.value.decode("utf-8")) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE,
        "type": "text",
        "text": {"body": TEXT, "preview_url": False},
    }


def test_a_whatsapp_message_without_any_number_id_is_refused_so_the_sms_goes(
    whatsapp: tuple[Any, Stubber],
) -> None:
    client, _ = whatsapp
    with pytest.raises(MessageRefused, match="NoPhoneNumberId") as raised:
        WhatsAppNotifier(client, default_origin=None).send(wa_message(origin=None))
    assert PHONE not in str(raised.value)


def test_the_whatsapp_notifier_sends_no_sms_message(whatsapp: tuple[Any, Stubber]) -> None:
    client, _ = whatsapp
    with pytest.raises(ValueError, match="sms message given to the whatsapp notifier"):
        WhatsAppNotifier(client, default_origin=WA_DEFAULT).send(sms_message())


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottledRequestException", 429),
        ("InternalServiceException", 500),
        ("DependencyException", 502),
        ("ThrottlingException", 400),
        # By their codes too, should an answer come without its 5xx status.
        ("DependencyException", 400),
        ("InternalServiceException", 400),
    ],
)
def test_whatsapp_throttling_and_outages_are_temporarily_unavailable(
    whatsapp: tuple[Any, Stubber], code: str, status: int
) -> None:
    client, stubber = whatsapp
    stubber.add_client_error("send_whatsapp_message", code, "injected", http_status_code=status)
    with pytest.raises(TemporarilyUnavailable) as raised:
        WhatsAppNotifier(client, default_origin=WA_DEFAULT).send(wa_message())
    assert raised.value.details["service"] == "socialmessaging"


@pytest.mark.parametrize("code", ["ValidationException", "InvalidParametersException"])
def test_a_whatsapp_refusal_carries_only_the_code(whatsapp: tuple[Any, Stubber], code: str) -> None:
    client, stubber = whatsapp
    stubber.add_client_error(
        "send_whatsapp_message",
        code,
        f"(#131030) Recipient phone number {PHONE} not in allowed list",
        http_status_code=400,
    )
    with pytest.raises(MessageRefused) as raised:
        WhatsAppNotifier(client, default_origin=WA_DEFAULT).send(wa_message())
    assert str(raised.value) == f"socialmessaging refused the message: {code}"
    assert PHONE not in formatted(raised.value)


@pytest.mark.parametrize(
    ("service", "operation"),
    [("pinpoint-sms-voice-v2", "send_text_message"), ("socialmessaging", "send_whatsapp_message")],
)
@pytest.mark.parametrize(
    "code", ["AccessDeniedException", "ResourceNotFoundException", "ServiceQuotaExceededException"]
)
def test_a_deployment_that_cannot_send_fails_loudly_instead_of_dropping_the_message(
    service: str, operation: str, code: str
) -> None:
    client = _client(service)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            operation, code, f"no grant to write to {PHONE}", http_status_code=400
        )
        notifier: Notifier = (
            EndUserSmsNotifier(client, default_origin=None)
            if operation == "send_text_message"
            else WhatsAppNotifier(client, default_origin=WA_DEFAULT)
        )
        message = sms_message() if operation == "send_text_message" else wa_message()
        # Not a MessageRefused: the event is retried, then dead-lettered with its alarm.
        with pytest.raises(ChannelMisconfigured) as raised:
            notifier.send(message)
    assert not isinstance(raised.value, MessageRefused)
    assert code in str(raised.value) and PHONE not in formatted(raised.value)


def test_the_template_json_is_utf8_and_holds_the_phone_only_as_the_recipient() -> None:
    raw = template_message(wa_message())
    assert "miércoles".encode() in raw
    assert raw.count(PHONE.encode()) == 1


# --- dispatch ------------------------------------------------------------------------------


class Recording:
    """A notifier that keeps what it was given."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> str | None:
        self.sent.append(message)
        return self.answer


def test_the_channel_notifier_hands_each_message_to_its_channel() -> None:
    sms, wa = Recording("s-1"), Recording("w-1")
    notifier: Notifier = ChannelNotifier(sms, wa)
    first, second = sms_message(), wa_message()
    assert notifier.send(first) == "s-1"
    assert notifier.send(second) == "w-1"
    assert sms.sent == [first] and wa.sent == [second]


def test_without_whatsapp_a_whatsapp_message_is_refused_and_sms_still_works() -> None:
    sms = Recording("s-1")
    notifier = ChannelNotifier(sms, None)
    with pytest.raises(MessageRefused) as raised:
        notifier.send(wa_message())
    assert str(raised.value) == "whatsapp is not configured"
    assert notifier.send(sms_message()) == "s-1"
    assert len(sms.sent) == 1


# --- clients -------------------------------------------------------------------------------


def test_the_default_clients_take_their_endpoints_and_the_shared_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", "http://127.0.0.1:4001")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SOCIALMESSAGING", "http://127.0.0.1:4002")
    sms_client = messaging.default_sms_client()
    wa_client = messaging.default_whatsapp_client()
    assert sms_client.meta.endpoint_url == "http://127.0.0.1:4001"
    assert wa_client.meta.endpoint_url == "http://127.0.0.1:4002"
    # botocore-stubs does not declare Config's options as attributes.
    shared: Any = CLIENT_CONFIG
    for client in (sms_client, wa_client):
        config: Any = client.meta.config
        assert config.read_timeout == shared.read_timeout == 5
        assert config.connect_timeout == shared.connect_timeout
        assert config.max_pool_connections == shared.max_pool_connections
        assert config.retries["mode"] == "standard"
