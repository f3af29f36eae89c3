"""`POST /_local/inbound`: a patient's SMS or WhatsApp reply, typed into `citas serve`.

It stands for the clinic's inbound number: the `x-api-key` says which clinic was written to,
as the number does on AWS. The body is `{"channel": "sms"|"whatsapp", "from": "+51...",
"text": "SI"}` or `"button": "<payload>"` instead of `text`, and optionally `"message_id"`
(the provider's id; the same id twice is handled once, as on AWS; default: a new one). It runs
the same `PatientReplies` as the inbound functions and answers what came of it:
`{"intent", "reply", "appointment_id", "replied", "duplicate"}`; the reply itself is printed
like every patient message.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

from domain.errors import CitasError, TemporarilyUnavailable, ValidationError
from domain.replies import MAX_INBOUND_TEXT, MAX_MESSAGE_ID, InboundMessage
from entrypoints.bootstrap import App
from entrypoints.http_responses import MethodNotAllowed, dumps, error_json, error_status
from entrypoints.messages import reply_to

PATH: Final = "/_local/inbound"
_E164: Final = re.compile(r"\+[1-9][0-9]{7,14}")
_FIELDS: Final = frozenset({"channel", "from", "text", "button", "message_id"})
# Not named `citas.*`: Powertools' Logger(service="citas") filters those out (runtime.py).
_MAX_BODY: Final = 16 * 1024


def _json(status: int, payload: object) -> dict[str, Any]:
    body = dumps(payload)
    headers = {"Content-Type": "application/json"}
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
    }


def _error(error: CitasError) -> dict[str, Any]:
    return _json(error_status(error), error_json(error.code, error.message, error.details))


def parse_inbound(body: str | None) -> InboundMessage:
    """The message a `/_local/inbound` body describes, or ValidationError."""
    if body is None or len(body.encode("utf-8", "replace")) > _MAX_BODY:
        raise ValidationError("the body must be a JSON object of at most 16 KiB", field="body")
    try:
        raw = json.loads(body)
    except ValueError:
        raise ValidationError("the body is not JSON", field="body") from None
    if not isinstance(raw, dict):
        raise ValidationError("the body must be a JSON object", field="body")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ValidationError("unknown field", field=unknown[0])
    channel = raw.get("channel")
    if channel not in ("sms", "whatsapp"):
        raise ValidationError("channel must be sms or whatsapp", field="channel")
    sender = raw.get("from")
    if not isinstance(sender, str) or not _E164.fullmatch(sender):
        raise ValidationError("from must be a phone in E.164, e.g. +51987654321", field="from")
    text, button = raw.get("text"), raw.get("button")
    if (text is None) == (button is None):
        raise ValidationError("give exactly one of text and button", field="text")
    for name, value in (("text", text), ("button", button)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"{name} must be a string", field=name)
    message_id = raw.get("message_id", str(uuid.uuid4()))
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= MAX_MESSAGE_ID:
        raise ValidationError(f"message_id is 1-{MAX_MESSAGE_ID} characters", field="message_id")
    return InboundMessage(
        channel=channel,
        message_id=message_id,
        sender=sender,
        text=text[:MAX_INBOUND_TEXT] if isinstance(text, str) else None,
        button=button[:300] if isinstance(button, str) else None,
    )


def make_inbound_handler(app: App) -> Callable[[Mapping[str, Any], Any], dict[str, Any]]:
    """A proxy-event handler of `POST /_local/inbound` on `app`."""

    def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        if str(event.get("httpMethod", "")).upper() != "POST":
            return _error(MethodNotAllowed("only POST is allowed here", allowed=["POST"]))
        identity = (event.get("requestContext") or {}).get("identity") or {}
        clinic = app.clinics.by_api_key_id(str(identity.get("apiKeyId", "")))
        if clinic is None:
            return _json(403, {"message": "Forbidden"})
        try:
            message = parse_inbound(event.get("body"))
            fields: dict[str, Any] = {}
            reply_to(app, clinic, message, fields)
        except (ValidationError, TemporarilyUnavailable) as e:
            return _error(e)
        keys = ("intent", "reply", "appointment_id", "replied", "duplicate")
        return _json(200, {k: fields.get(k) for k in keys})

    return handler
