"""AWS End User Messaging: patients' messages as SMS (`pinpoint-sms-voice-v2`) or WhatsApp.

`EndUserSmsNotifier` sends the whole text of a message with SendTextMessage, as a
TRANSACTIONAL message: AWS's type for messages that are critical or time-sensitive
(PROMOTIONAL is for the others), which a confirmation, a cancellation or a reminder is; it is
no marketing, and the SNS adapter already sends it as SNS's Transactional SMS type.
`WhatsAppNotifier` sends the clinic's approved template through End User Messaging Social,
whose `message` is Meta's Cloud API message object as JSON bytes; each quick-reply button
carries a payload naming an action and a link token, never a patient, because the payload
comes back in the inbound webhook, in AWS's event destinations and in logs along the way.
`ChannelNotifier` is the `ports.messaging.Notifier` that picks one of the two by channel.

Each adapter sends one message on one channel and says how it went: `TemporarilyUnavailable`
when AWS is throttled or down (a retry may work), `MessageRefused` with only AWS's error code
when it refused the message (AWS's messages may quote the phone). Falling back to SMS when
WhatsApp refuses, or when the delivery event later says the number has no WhatsApp, is the
messenger's decision, not the adapter's: it knows whether the SMS text is worth its price.
Neither the phone nor the text ever reaches an exception or a log here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.exceptions import ClientError

from adapters.aws.client import CLIENT_CONFIG, LazyClient, error_code, lazy, translate_errors
from domain.errors import TemporarilyUnavailable
from ports.messaging import MessageRefused, Notifier, OutboundMessage

if TYPE_CHECKING:
    from typing import TypeAlias

    # boto3-stubs is installed without its pinpoint-sms-voice-v2 and socialmessaging
    # extras: these clients are untyped rather than a new dev dependency.
    SmsVoiceClient: TypeAlias = Any
    SocialMessagingClient: TypeAlias = Any

SMS_SERVICE: Final = "pinpoint-sms-voice-v2"
WHATSAPP_SERVICE: Final = "socialmessaging"
DEFAULT_META_API_VERSION: Final = "v20.0"

# "Try again later" codes of these two services that client.RETRYABLE_CODES does not list:
# End User Messaging Social throttles with ThrottledRequestException (HTTP 429, below the
# 5xx that translate_errors also treats as retryable), and the 5xx ones are named so that
# an answer without its status (a proxy, a stub) is still read as an outage. Social's
# DependencyException (502) is Meta's side failing.
_ALSO_RETRYABLE: Final = frozenset(
    {
        "ThrottledRequestException",
        "InternalServerException",
        "InternalServiceException",
        "DependencyException",
    }
)


def default_sms_client() -> SmsVoiceClient:
    """An End User Messaging SMS client (`AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2`, ...)."""
    return boto3.client(SMS_SERVICE, config=CLIENT_CONFIG)


def default_whatsapp_client() -> SocialMessagingClient:
    """An End User Messaging Social client (`AWS_ENDPOINT_URL_SOCIALMESSAGING`, ...)."""
    return boto3.client(WHATSAPP_SERVICE, config=CLIENT_CONFIG)


class ChannelMisconfigured(Exception):
    """The deployment cannot send at all (a missing grant or identity, a spending limit).

    Not a refusal of this message: raised, so the event is tried again and ends in the
    dead-letter queue (with its alarm) instead of being dropped as undeliverable.
    """


# Refusals that say nothing about the patient's number, everything about the deployment.
_MISCONFIGURED = frozenset(
    {
        "AccessDeniedException",
        "ResourceNotFoundException",
        "ServiceQuotaExceededException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
    }
)


@contextlib.contextmanager
def _sending(service: str) -> Iterator[None]:
    """AWS's trouble, the deployment's and this message's refusal as the messenger needs them.

    Throttling and outages: TemporarilyUnavailable; a deployment that cannot send:
    ChannelMisconfigured; a refusal of this message for good: MessageRefused.
    """
    try:
        with translate_errors(service):
            try:
                yield
            except ClientError as e:
                if error_code(e) in _ALSO_RETRYABLE:
                    raise TemporarilyUnavailable(
                        f"{service} is busy or unavailable, retry shortly", service=service
                    ) from e
                raise
    except ClientError as e:
        if error_code(e) in _MISCONFIGURED:
            raise ChannelMisconfigured(f"{service} cannot send: {error_code(e)}") from None
        # Only the code: AWS (and Meta, through AWS) quote the destination in some refusals,
        # and `from None` keeps the original message out of any traceback that gets logged.
        raise MessageRefused(f"{service} refused the message: {error_code(e)}") from None


def _expect_channel(message: OutboundMessage, channel: str) -> None:
    # A message of the other channel carries the other channel's origin (a WhatsApp phone
    # number id is no SMS origination identity): sending it here would be a bug.
    if message.channel != channel:
        raise ValueError(f"a {message.channel} message given to the {channel} notifier")


class EndUserSmsNotifier:
    """Sends each message's whole text as one transactional SMS with SendTextMessage."""

    def __init__(
        self,
        client: SmsVoiceClient | LazyClient[SmsVoiceClient] | None = None,
        *,
        default_origin: str | None,
        configuration_set: str | None = None,
    ) -> None:
        self._client = lazy(client, default_sms_client)
        self.default_origin = default_origin
        self.configuration_set = configuration_set

    def send(self, message: OutboundMessage) -> str | None:
        """Send `message.text` to `message.phone`; AWS's message id."""
        _expect_channel(message, "sms")
        with _sending(SMS_SERVICE):
            response = self._client().send_text_message(**self.request(message))
        message_id = response.get("MessageId")
        return str(message_id) if message_id else None

    def request(self, message: OutboundMessage) -> dict[str, Any]:
        """The SendTextMessage parameters of `message`."""
        params: dict[str, Any] = {
            "DestinationPhoneNumber": message.phone,
            "MessageBody": message.text,
            "MessageType": "TRANSACTIONAL",
        }
        origin = message.origin or self.default_origin
        if origin:
            # Without one, AWS chooses among the account's origination identities for the
            # destination country (or its shared ones, where a country has them).
            params["OriginationIdentity"] = origin
        if self.configuration_set:
            # The configuration set routes delivery events to the event destination.
            params["ConfigurationSetName"] = self.configuration_set
        # Context is copied into every delivery event: ids only, so the events can be joined
        # to the appointment without holding anything a patient told us.
        context = {
            key: value
            for key, value in (
                ("clinic_id", message.clinic_id),
                ("appointment_id", message.appointment_id),
            )
            if value
        }
        if context:
            params["Context"] = context
        return params


class WhatsAppNotifier:
    """Sends each message as its approved WhatsApp template with SendWhatsAppMessage."""

    def __init__(
        self,
        client: SocialMessagingClient | LazyClient[SocialMessagingClient] | None = None,
        *,
        default_origin: str | None,
        meta_api_version: str = DEFAULT_META_API_VERSION,
    ) -> None:
        self._client = lazy(client, default_whatsapp_client)
        self.default_origin = default_origin
        self.meta_api_version = meta_api_version

    def send(self, message: OutboundMessage) -> str | None:
        """Send `message`'s template to `message.phone`; the WhatsApp message id (wamid)."""
        _expect_channel(message, "whatsapp")
        origin = message.origin or self.default_origin
        if not origin:
            # Unlike SMS there is no account default: every send names the sending number.
            # A clinic without one cannot write on WhatsApp: refused, so the SMS goes instead.
            raise MessageRefused("whatsapp refused the message: NoPhoneNumberId")
        body = template_message(message)
        with _sending(WHATSAPP_SERVICE):
            response = self._client().send_whatsapp_message(
                originationPhoneNumberId=origin,
                metaApiVersion=self.meta_api_version,
                message=body,
            )
        message_id = response.get("messageId")
        return str(message_id) if message_id else None


def text_message(message: OutboundMessage) -> bytes:
    """Meta's Cloud API text message: a reply, inside the 24-hour customer service window."""
    document = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.phone,
        "type": "text",
        "text": {"body": message.text, "preview_url": False},
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def template_message(message: OutboundMessage) -> bytes:
    """Meta's Cloud API message object for `message`'s template (or its text), as UTF-8 JSON.

    Without a template the message is a reply to the patient's own message, which WhatsApp
    delivers as plain text within 24 hours of it (the messenger sends replies only then).
    """
    if not message.template:
        return text_message(message)
    components: list[dict[str, Any]] = []
    if message.parameters:
        components.append(
            {
                "type": "body",
                "parameters": [{"type": "text", "text": p} for p in message.parameters],
            }
        )
    components.extend(
        {
            "type": "button",
            "sub_type": "quick_reply",
            # Meta's index is the button's position in the approved template, as a string.
            "index": str(index),
            "parameters": [{"type": "payload", "payload": payload}],
        }
        for index, payload in enumerate(message.buttons)
    )
    template: dict[str, Any] = {"name": message.template, "language": {"code": message.language}}
    if components:
        template["components"] = components
    document = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        # E.164 with its '+', as stored and as Meta's own examples write it: the country
        # code is explicit, whatever the country of the clinic's sending number.
        "to": message.phone,
        "type": "template",
        "template": template,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class ChannelNotifier:
    """The `Notifier` that hands each message to the adapter of its channel."""

    def __init__(self, sms: Notifier, whatsapp: Notifier | None) -> None:
        self.sms = sms
        self.whatsapp = whatsapp

    def send(self, message: OutboundMessage) -> str | None:
        """Send `message` on its channel; MessageRefused for a channel not configured."""
        if message.channel == "sms":
            return self.sms.send(message)
        if message.channel == "whatsapp":
            if self.whatsapp is None:
                # Refused, not an error: the messenger may still reach the patient by SMS.
                raise MessageRefused("whatsapp is not configured")
            return self.whatsapp.send(message)
        raise ValueError(f"unknown channel {message.channel!r}")
