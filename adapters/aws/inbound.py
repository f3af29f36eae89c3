"""What patients send back through AWS: inbound SMS and WhatsApp events, as SNS hands them over.

Both channels publish to an SNS topic the inbound function is subscribed to; each record of the
Lambda event carries one notification whose `Message` is a JSON string:

- the Lambda SNS event: https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html
- AWS End User Messaging SMS, two-way SMS:
  https://docs.aws.amazon.com/sms-voice/latest/userguide/two-way-sms-payload.html
- AWS End User Messaging Social (WhatsApp), an AWS header around Meta's webhook `entry`, itself
  a JSON string:
  https://docs.aws.amazon.com/social-messaging/latest/userguide/managing-event-destination-dlrs.html
  and, for that entry, Meta's webhook reference:
  https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/

Authenticity. SNS signs its messages so that an HTTP(S) endpoint, which anyone can POST to, can
tell them from forgeries ("Amazon SNS uses message signatures to confirm the authenticity of
messages sent to your HTTP endpoint",
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html). A Lambda
subscription has no such endpoint: "Amazon SNS invokes your function asynchronously"
(https://docs.aws.amazon.com/lambda/latest/dg/with-sns.html) under a statement of the function's
resource-based policy for the principal `sns.amazonaws.com`, which "lets Amazon SNS call the
Invoke API action on the function" and, given the topic as `source-arn`, only for that topic
("To ensure that your function is only invoked by a specific resource, specify the Amazon
Resource Name (ARN) of the resource",
https://docs.aws.amazon.com/lambda/latest/dg/permissions-function-services.html). So this module
relies on that policy and verifies no signature; every field is validated strictly all the
same, and a record that fails is dropped, never applied. `sns_messages` hands back each record's
topic ARN, but the functions do not compare it with their own (the SNS page's "Reject any
message with an unexpected TopicArn"): the policy already admits that one topic only.

Nothing here ever quotes a payload in an error: it holds phone numbers and what patients wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from domain.replies import MAX_INBOUND_TEXT, MAX_MESSAGE_ID, DeliveryFailure, InboundMessage

# A patient's phone as the domain keeps it (E.164, 8 to 15 digits).
E164: Final = re.compile(r"\+[1-9][0-9]{7,14}")
# The number a patient wrote to: AWS's PhoneNumber pattern, which short codes also match
# (https://docs.aws.amazon.com/pinpoint/latest/apireference_smsvoicev2/API_PhoneNumberInformation.html).
SMS_NUMBER: Final = re.compile(r"\+?[1-9][0-9]{1,18}")
# Provider ids are UUIDs and Meta's base64 `wamid.`s: printable ASCII, so a deduplication key
# never holds a space, a control character or a lone surrogate a store would choke on.
MESSAGE_ID: Final = re.compile(r"[\x21-\x7e]+")
TOPIC_ARN: Final = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}")
META_PHONE_NUMBER_ID: Final = re.compile(r"[0-9A-Za-z]{1,64}")
# `arn:...:phone-number-id/<id>` as GetLinkedWhatsAppBusinessAccount gives it; 99 characters
# keep `phone-number-id-<id>` within the 115 SendWhatsAppMessage accepts (botocore's model).
PHONE_NUMBER_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:social-messaging:[a-z0-9-]+:[0-9]{12}:phone-number-id/([0-9A-Za-z]{1,99})"
)
ERROR_CODE: Final = re.compile(r"[0-9]{1,12}")
# Surrogates decode from JSON `\ud800` escapes but encode to no UTF-8 at all.
SURROGATE: Final = re.compile("[\ud800-\udfff]")

_NOT_JSON: Final = object()


class MalformedInbound(ValueError):
    """An inbound event is not in the documented shape; the message names fields, never values."""


def sns_messages(event: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """`(SNS message id, topic ARN, message)` of every record of a Lambda SNS event."""
    if not isinstance(event, Mapping):
        raise MalformedInbound("sns: the event is not an object")
    records = event.get("Records")
    if not isinstance(records, list):
        raise MalformedInbound("sns: Records is missing or not a list")
    return [_sns_record(record) for record in records]


def parse_sms(message: str) -> InboundMessage:
    """The patient's SMS in a two-way SMS payload of End User Messaging SMS."""
    payload = _load(message, "sms")
    return InboundMessage(
        channel="sms",
        message_id=_id(payload, "inboundMessageId", "sms"),
        sender=_phone(_string(payload, "originationNumber", "sms"), "sms originationNumber"),
        recipient=_matching(payload, "destinationNumber", SMS_NUMBER, "sms"),
        text=_text(_string(payload, "messageBody", "sms")),
    )


def parse_whatsapp(message: str) -> list[InboundMessage | DeliveryFailure]:
    """Each message and each failed delivery in one End User Messaging Social WhatsApp event."""
    envelope = _load(message, "whatsapp")
    aws_ids = _aws_phone_number_ids(envelope)
    entry = _load(_string(envelope, "whatsAppWebhookEntry", "whatsapp"), "whatsapp entry")
    found: list[InboundMessage | DeliveryFailure] = []
    for change in _list(entry, "changes", "whatsapp entry", required=True):
        found.extend(_change(change, aws_ids))
    return found


def _sns_record(record: object) -> tuple[str, str, str]:
    if not isinstance(record, Mapping) or record.get("EventSource") != "aws:sns":
        raise MalformedInbound("sns: a record is not an SNS record")
    sns = record.get("Sns")
    # Lambda is only ever given notifications; confirmations go to HTTP endpoints.
    if not isinstance(sns, Mapping) or sns.get("Type") != "Notification":
        raise MalformedInbound("sns: a record holds no SNS notification")
    return (
        _id(sns, "MessageId", "sns"),
        _matching(sns, "TopicArn", TOPIC_ARN, "sns"),
        _string(sns, "Message", "sns"),
    )


def _aws_phone_number_ids(envelope: Mapping[str, Any]) -> dict[str, str]:
    """Meta's phone number id → AWS's (`phone-number-id-...`), from the event's AWS header."""
    context = _object(envelope, "context", "whatsapp", required=False)
    ids: dict[str, str] = {}
    for number in _list(context, "MetaPhoneNumberIds", "whatsapp context", required=False):
        if not isinstance(number, Mapping):
            raise MalformedInbound("whatsapp context: a MetaPhoneNumberIds item is not an object")
        meta_id = _string(number, "metaPhoneNumberId", "whatsapp context")
        arn = PHONE_NUMBER_ARN.fullmatch(_string(number, "arn", "whatsapp context"))
        if arn is not None:
            # SendWhatsAppMessage's originationPhoneNumberId takes this form, so a reply can
            # leave from the number the patient wrote to.
            ids.setdefault(meta_id, f"phone-number-id-{arn[1]}")
    return ids


def _change(change: object, aws_ids: Mapping[str, str]) -> list[InboundMessage | DeliveryFailure]:
    if not isinstance(change, Mapping):
        raise MalformedInbound("whatsapp entry: a change is not an object")
    if _string(change, "field", "whatsapp change") != "messages":
        # Template reviews and account updates share the topic; no patient wrote them.
        return []
    value = _object(change, "value", "whatsapp change")
    metadata = _object(value, "metadata", "whatsapp value")
    meta_id = _matching(metadata, "phone_number_id", META_PHONE_NUMBER_ID, "whatsapp metadata")
    recipient = aws_ids.get(meta_id, meta_id)
    found: list[InboundMessage | DeliveryFailure] = []
    for message in _list(value, "messages", "whatsapp value", required=False):
        found.append(_message(message, recipient))
    for status in _list(value, "statuses", "whatsapp value", required=False):
        failure = _failure(status)
        if failure is not None:
            found.append(failure)
    return found


def _message(message: object, recipient: str) -> InboundMessage:
    if not isinstance(message, Mapping):
        raise MalformedInbound("whatsapp value: a message is not an object")
    message_id = _id(message, "id", "whatsapp message")
    # Meta's `from` is the digits of the number, without the plus.
    sender = _phone("+" + _string(message, "from", "whatsapp message"), "whatsapp message from")
    text, button = _content(message, _string(message, "type", "whatsapp message"))
    return InboundMessage("whatsapp", message_id, sender, recipient, text, button)


def _content(message: Mapping[str, Any], kind: str) -> tuple[str | None, str | None]:
    """The `(text, button payload)` of a message of type `kind`."""
    where = f"whatsapp {kind} message"
    if kind == "text":
        return _text(_string(_object(message, "text", where), "body", where)), None
    if kind == "button":
        # A template's quick-reply button: the payload is the one we sent with it.
        return None, _text(_string(_object(message, "button", where), "payload", where))
    if kind == "interactive":
        interactive = _object(message, "interactive", where)
        if _string(interactive, "type", where) == "button_reply":
            return None, _text(_string(_object(interactive, "button_reply", where), "id", where))
    # Images, audio, locations, list replies...: nothing to read a keyword from, so the use
    # case answers them with the help text.
    return None, None


def _failure(status: object) -> DeliveryFailure | None:
    if not isinstance(status, Mapping):
        raise MalformedInbound("whatsapp value: a status is not an object")
    # Sent, delivered and read need nothing from us; only a failure changes what we do.
    if _string(status, "status", "whatsapp status") != "failed":
        return None
    message_id = _id(status, "id", "whatsapp status")
    errors = _list(status, "errors", "whatsapp status", required=False)
    # The phone it was for (Meta's digits): the SMS fallback goes there. Absent: no fallback.
    recipient = status.get("recipient_id")
    phone = f"+{recipient}" if isinstance(recipient, str) else None
    return DeliveryFailure(
        channel="whatsapp",
        message_id=message_id,
        recipient=phone if phone is not None and E164.fullmatch(phone) else None,
        error_code=_error_code(errors[0]) if errors else None,
    )


def _error_code(error: object) -> str | None:
    if not isinstance(error, Mapping):
        raise MalformedInbound("whatsapp status: an error is not an object")
    code = error.get("code")
    if code is None:
        return None
    # Meta documents an integer; digits in a string are the same code re-serialized.
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code < 10**12:
        return str(code)
    if isinstance(code, str) and ERROR_CODE.fullmatch(code):
        return code
    raise MalformedInbound("whatsapp status: an error code is not a number")


def _load(message: object, where: str) -> Mapping[str, Any]:
    """The JSON object `message` holds."""
    if not isinstance(message, str):
        raise MalformedInbound(f"{where}: the message is not a string")
    try:
        value = json.loads(message)
    except (ValueError, RecursionError):
        # Raised outside the handler: a JSONDecodeError holds the whole document, and a
        # chained one would put it in any traceback that gets logged.
        value = _NOT_JSON
    if value is _NOT_JSON:
        raise MalformedInbound(f"{where}: the message is not JSON")
    if not isinstance(value, dict):
        raise MalformedInbound(f"{where}: the message is not a JSON object")
    return value


def _string(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedInbound(f"{where}: {key} is missing or not a string")
    return value


def _matching(obj: Mapping[str, Any], key: str, pattern: re.Pattern[str], where: str) -> str:
    value = _string(obj, key, where)
    if pattern.fullmatch(value) is None:
        raise MalformedInbound(f"{where}: {key} is not in the documented form")
    return value


def _id(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _string(obj, key, where)
    if len(value) > MAX_MESSAGE_ID or MESSAGE_ID.fullmatch(value) is None:
        raise MalformedInbound(f"{where}: {key} is empty, too long or not printable ASCII")
    return value


def _phone(value: str, where: str) -> str:
    if E164.fullmatch(value) is None:
        raise MalformedInbound(f"{where} is not an E.164 phone number")
    return value


def _object(
    obj: Mapping[str, Any], key: str, where: str, *, required: bool = True
) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedInbound(f"{where}: {key} is missing or not an object")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str, *, required: bool) -> list[Any]:
    value = obj.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise MalformedInbound(f"{where}: {key} is missing or not a list")
    return value


def _text(value: str) -> str:
    """`value` cut to MAX_INBOUND_TEXT, lone surrogates replaced."""
    return SURROGATE.sub("\ufffd", value[:MAX_INBOUND_TEXT])
