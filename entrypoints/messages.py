"""One handler per message kind: parse the message, call one use case, say what came of it.

Each handler is a plain function of the app, the message and that message's log fields (filled
in as ids become known, so a failure log names them too). A Lambda module wraps it with
Powertools (`entrypoints.consumers`); a local runtime calls it from its polling loop. Neither
adds a check of its own: a new consumer is one handler here and one wrapper per transport.

A handler raises PoisonMessage for a message no retry can ever handle, or lets through the
use case's NotFound for one about nothing known (both `is_poison`: the transport dead-letters
them), TemporarilyUnavailable when a later try will most likely work, and anything else for a
failure it cannot judge (retried, then dead-lettered). Fields carry ids, types and
codes only: message bodies hold the patient's name and phone.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from typing import Any

import attrs

from domain.booking_request import BookingRequest, RequestStatus
from domain.clinics import ClinicProfile, clinic_for_recipient
from domain.errors import CitasError, NotFound, ValidationError
from domain.events import Event, event_from_envelope
from domain.replies import DeliveryFailure, InboundMessage
from entrypoints.bootstrap import App

Fields = dict[str, Any]
# A message handler: the app, the message body and its log fields in, its outcome out.
MessageHandler = Callable[[App, str | None, Fields], "Outcome"]


class PoisonMessage(Exception):
    """A message no retry can ever handle: malformed, or not this consumer's to handle."""


def is_poison(error: BaseException) -> bool:
    """Whether no retry can ever handle the message that failed with `error`."""
    # NotFound keeps its own type and code in the logs: the message names nothing known.
    return isinstance(error, PoisonMessage | NotFound)


@attrs.frozen
class Outcome:
    """What one message came to: the log line that says so and the metric it counts in."""

    message: str
    metric: str | None = None
    count: int = 1


def json_object(body: str | None) -> dict[str, Any]:
    """The JSON object a message body holds, or PoisonMessage."""
    try:
        value = json.loads(body or "")
    except ValueError as e:
        raise PoisonMessage("the message body is not JSON") from e
    if not isinstance(value, dict):
        raise PoisonMessage("the message body is not a JSON object")
    return value


def failure_fields(error: BaseException) -> Fields:
    """What a log may say about a failure: type, error code and origin, never the message."""
    fields: Fields = {"error_type": type(error).__name__}
    if isinstance(error, CitasError):
        fields["error_code"] = error.code
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        fields["raised_at"] = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"
    cause = error.__cause__
    if cause is not None:
        fields["cause_type"] = type(cause).__name__
    return fields


# Booking requests ----------------------------------------------------------------------------


def booking_message(body: str | None) -> tuple[str, str, BookingRequest | None]:
    """The clinic and request id a message carries, and the whole queued request.

    PoisonMessage if it names no clinic or request. A bare `{"clinic_id", "request_id"}`
    message (a hand-made redrive) carries no copy of the request: None.
    """
    raw = json_object(body)
    request_id = raw.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise PoisonMessage("the message has no request_id")
    clinic_id = raw.get("clinic_id")
    if not isinstance(clinic_id, str) or not clinic_id:
        # Queued by a release before clinics: no clinic may be guessed for it.
        raise PoisonMessage("the message names no clinic")
    if set(raw) == {"clinic_id", "request_id"}:
        return clinic_id, request_id, None
    try:
        return clinic_id, request_id, BookingRequest.from_message(raw)
    except ValidationError as e:
        raise PoisonMessage("the message is not a queued booking request") from e


def book_request(
    app: App, body: str | None, fields: Fields, *, country: str | None = None
) -> Outcome:
    """Book or reject a queued request once; a country's worker passes its `country`."""
    clinic_id, request_id, queued = booking_message(body)
    fields["request_id"] = request_id
    try:
        clinic = app.for_clinic(clinic_id)
        fields["clinic_id"] = clinic_id
        # NotFound (an old message about nothing) goes through as it is: poison too.
        processed = clinic.handle_booking_request(request_id, queued, country=country)
    except ValidationError as e:
        # The refused request's own country: which worker it was meant for.
        if "country" in e.details:
            fields["country"] = e.details["country"]
        raise PoisonMessage("the request is not this worker's to book") from e
    request = processed.request
    fields.update(country=request.country, status=str(request.status))
    if not processed.processed_now:
        # A redelivery after the outcome was stored: nothing was done twice.
        return Outcome("request already processed", "RequestsAlreadyProcessed")
    if request.appointment_id is not None:
        fields["appointment_id"] = request.appointment_id
    if request.error is not None:
        fields["error_code"] = request.error.get("code")
    booked = request.status is RequestStatus.BOOKED
    return Outcome("request processed", "RequestsBooked" if booked else "RequestsRejected")


# Domain events -------------------------------------------------------------------------------


def event_of(body: str | None) -> Event:
    """The event a message carries, or PoisonMessage."""
    envelope = json_object(body)
    try:
        return event_from_envelope(envelope)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PoisonMessage("the message is not an event envelope") from e


def envelope_body(event: Event) -> str:
    """The message body an event travels in on the events queue."""
    return json.dumps(event.to_envelope(), separators=(",", ":"))


def _event_fields(event: Event) -> Fields:
    return {
        "clinic_id": event.clinic_id,
        "event_id": event.event_id,
        "event_type": event.type,
        "appointment_id": event.appointment_id,
    }


def notify_patient(app: App, body: str | None, fields: Fields) -> Outcome:
    """Tell the patient what the message's event means for them, once per event id."""
    event = event_of(body)
    fields.update(_event_fields(event))
    sent = app.messenger.handle(event)
    fields["sent"] = sent
    return Outcome("event handled", "NotificationsSent" if sent else None)


def refill_waitlist(app: App, body: str | None, fields: Fields) -> Outcome:
    """Offer the time the message's event freed to the doctor's waitlist, oldest entry first."""
    event = event_of(body)
    fields.update(_event_fields(event))
    # A redelivery offers nothing twice: an entry offered is no longer waiting, and a slot
    # held or booked fails the offer's conditional write.
    offered = app.for_clinic(event.clinic_id).refill_after(event)
    fields["offers"] = len(offered)
    return Outcome("waitlist refilled", "WaitlistOffersMade" if offered else None, len(offered))


def on_event(app: App, body: str | None, fields: Fields) -> Outcome:
    """Everything one event of the events queue calls for: the waitlist's refill, the message."""
    # The refill first: freed time is offered even when the patient's message turns out to
    # be poison. Both parts are safe to run again, so a failure of either retries the pair.
    refill_waitlist(app, body, fields)
    return notify_patient(app, body, fields)


def relay_event(app: App, event: Event, fields: Fields) -> Outcome:
    """Publish one committed outbox event, then forget it (at least once, never lost)."""
    fields.update(_event_fields(event))
    if app.publisher is None:
        raise RuntimeError("this function has no events queue to publish to")
    # Publish first, remove after: a crash in between publishes again, and consumers drop
    # the repeat by event id.
    app.publisher.publish(event)
    app.outbox.remove([event.event_id])
    return Outcome("event published", "EventsPublished")


# Scheduled ticks -----------------------------------------------------------------------------


def run_cadence(app: App, fields: Fields) -> Outcome:
    """Record each clinic's due cadence steps, and send the messages quiet hours held back."""
    # The clock, not the tick's own time, decides: a delayed run still uses now.
    recorded = held = 0
    for clinic in app.clinics.all():
        recorded += len(app.for_clinic(clinic.clinic_id).run_cadence())
        held += app.messenger.send_held(clinic.clinic_id)
    fields.update(recorded=recorded, held_sent=held)
    return Outcome("cadence recorded", "CadenceStepsDue", count=recorded)


def sweep_offers(app: App, fields: Fields) -> Outcome:
    """Let go of each clinic's waitlist offers whose hold ran out, so the next entry gets them."""
    # Each release commits a WaitlistOfferExpired with its slot: the events consumer offers
    # it on (`refill_waitlist`). An offer released by a racing run is simply not counted.
    released = 0
    failed: Exception | None = None
    for clinic in app.clinics.all():
        try:
            released += len(app.for_clinic(clinic.clinic_id).sweep_offers())
        except Exception as e:
            # One clinic's trouble must not keep every other clinic's holds another minute.
            failed = failed or e
            fields.setdefault("failed_clinics", []).append(clinic.clinic_id)
    fields["released"] = released
    if failed is not None:
        raise failed
    return Outcome("offers swept", "WaitlistOffersExpired", count=released)


# Inbound replies -----------------------------------------------------------------------------


def reply_to(app: App, clinic: ClinicProfile, message: InboundMessage, fields: Fields) -> Outcome:
    """Apply one patient's message to `clinic`, once per provider message id."""
    fields.update(clinic_id=clinic.clinic_id, channel=message.channel)
    outcome = app.replies.handle(clinic, message)
    fields.update(
        intent=str(outcome.intent),
        reply=str(outcome.reply) if outcome.reply else None,
        appointment_id=outcome.appointment_id,
        duplicate=outcome.duplicate,
        replied=outcome.replied,
    )
    if outcome.reply_failed:
        fields["reply_failed"] = True
    if outcome.duplicate:
        return Outcome("inbound message already handled", "InboundDuplicates")
    return Outcome("inbound message handled", "InboundMessages")


def inbound_sms(app: App, body: str | None, fields: Fields) -> Outcome:
    """One two-way SMS (the SNS message End User Messaging SMS publishes)."""
    # Imported here: the format is AWS's, and the local runtime never needs it.
    from adapters.aws.inbound import MalformedInbound, parse_sms

    try:
        message = parse_sms(body or "")
    except MalformedInbound as e:
        raise PoisonMessage("the message is not a two-way SMS") from e
    fields["inbound_id"] = message.message_id[:64]
    clinic = clinic_for_recipient(app.clinics.all(), "sms", message.recipient)
    if clinic is None:
        return Outcome("inbound message for no clinic; dropped", "InboundUnrouted")
    return reply_to(app, clinic, message, fields)


def inbound_whatsapp(app: App, body: str | None, fields: Fields) -> Outcome:
    """One WhatsApp event (messages and delivery statuses) End User Messaging Social publishes."""
    from adapters.aws.inbound import MalformedInbound, parse_whatsapp

    try:
        items = parse_whatsapp(body or "")
    except MalformedInbound as e:
        raise PoisonMessage("the message is not a WhatsApp event") from e
    handled = fallbacks = 0
    for item in items:
        if isinstance(item, DeliveryFailure):
            fallbacks += app.messenger.fall_back(item)
            continue
        clinic = clinic_for_recipient(app.clinics.all(), "whatsapp", item.recipient)
        if clinic is None:
            continue
        reply_to(app, clinic, item, {})
        handled += 1
    fields.update(messages=handled, fallbacks=fallbacks, items=len(items))
    return Outcome("whatsapp event handled", "InboundMessages", count=handled)
