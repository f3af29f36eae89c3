"""Item mappers: each aggregate or record to its table item and back, and attribute values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from adapters.aws.dynamodb.keys import (
    APPOINTMENT_SK,
    DOCTOR_SK,
    EVENT_SK,
    IDEMPOTENCY_SK,
    IDEMPOTENCY_TTL,
    KEY_ATTRIBUTES,
    OFFER_EXPIRES,
    OUTBOX_PARTITION,
    PROCESSED_SK,
    PROCESSED_TTL,
    REQUEST_SK,
    WAITLIST_SK,
    WAITLIST_TTL,
    appointment_pk,
    country_status_partition,
    doctor_partition,
    doctor_pk,
    epoch,
    hold_partition,
    hold_position,
    idempotency_pk,
    instant,
    iso,
    outbox_pk,
    processed_pk,
    request_pk,
    time_off_partition,
    time_off_sk,
    waitlist_partition,
    waitlist_pk,
)
from domain.appointment import Appointment
from domain.booking_request import BookingRequest, RequestStatus
from domain.commands import BookAppointment
from domain.events import Event, event_from_envelope
from domain.schedule import Doctor
from domain.time_off import TimeOff
from domain.waitlist import WaitlistEntry
from ports.repositories import IdempotencyRecord

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


# --- attribute values ----------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Numbers come back as Decimal; every number citas stores is an integer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def attribute_values(item: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """A plain mapping as DynamoDB attribute values; None values are left out."""
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def from_attribute_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `attribute_values`, with plain numbers."""
    return {k: plain(_deserializer.deserialize(v)) for k, v in item.items()}


def from_attribute_value(value: Any) -> Any:
    """One attribute value as a plain value."""
    return plain(_deserializer.deserialize(value))


# --- appointments, idempotency keys, outbox events -----------------------------------------


def appointment_to_item(appointment: Appointment) -> dict[str, Any]:
    """The appointment item: its snapshot plus the keys of the table and both indexes."""
    order = f"{instant(appointment.start)}#{appointment.appointment_id}"
    clinic = appointment.clinic_id
    return {
        **appointment.snapshot(),
        "pk": appointment_pk(clinic, appointment.appointment_id),
        "sk": APPOINTMENT_SK,
        "gsi1pk": doctor_partition(clinic, appointment.doctor_id),
        "gsi1sk": order,
        "gsi2pk": country_status_partition(clinic, appointment.country, appointment.status),
        "gsi2sk": order,
    }


def appointment_from_item(item: Mapping[str, Any]) -> Appointment:
    """Inverse of `appointment_to_item`."""
    return Appointment.from_snapshot({k: v for k, v in item.items() if k not in KEY_ATTRIBUTES})


def idempotency_to_item(clinic_id: str, record: IdempotencyRecord, now: datetime) -> dict[str, Any]:
    """The idempotency item of a clinic, expiring a day after the booking."""
    return {
        "pk": idempotency_pk(clinic_id, record.key),
        "sk": IDEMPOTENCY_SK,
        "key": record.key,
        "fingerprint": record.fingerprint,
        "appointment_id": record.appointment_id,
        "expires_at": epoch(now + IDEMPOTENCY_TTL),
    }


def idempotency_from_item(item: Mapping[str, Any]) -> IdempotencyRecord:
    """Inverse of `idempotency_to_item`."""
    return IdempotencyRecord(
        key=item["key"], fingerprint=item["fingerprint"], appointment_id=item["appointment_id"]
    )


def event_to_item(event: Event) -> dict[str, Any]:
    """The outbox item; the relay's stream filter matches INSERTs whose `pk` starts `OUTBOX#`."""
    return {
        "pk": outbox_pk(event.event_id),
        "sk": EVENT_SK,
        "outbox": 1,
        "clinic_id": event.clinic_id,
        "envelope": json.dumps(event.to_envelope(), separators=(",", ":"), sort_keys=True),
        # One index partition lists the pending events oldest first without a Scan.
        "gsi1pk": OUTBOX_PARTITION,
        "gsi1sk": f"{instant(event.occurred_at)}#{event.event_id}",
    }


def event_from_item(item: Mapping[str, Any]) -> Event:
    """Inverse of `event_to_item`."""
    return event_from_envelope(json.loads(item["envelope"]))


# --- doctors, booking requests, handled-event markers --------------------------------------


def doctor_to_item(doctor: Doctor) -> dict[str, Any]:
    """The doctor's profile item."""
    return {
        "pk": doctor_pk(doctor.clinic_id, doctor.doctor_id),
        "sk": DOCTOR_SK,
        **doctor.snapshot(),
    }


def doctor_from_item(item: Mapping[str, Any]) -> Doctor:
    """Inverse of `doctor_to_item`."""
    return Doctor.from_snapshot(item)


def time_off_to_item(block: TimeOff) -> dict[str, Any]:
    """A block of time off: in its doctor's partition, and by start in gsi1."""
    return {
        **block.snapshot(),
        "pk": doctor_pk(block.clinic_id, block.doctor_id),
        "sk": time_off_sk(block.time_off_id),
        "gsi1pk": time_off_partition(block.clinic_id, block.doctor_id),
        "gsi1sk": f"{instant(block.start)}#{block.time_off_id}",
    }


def time_off_from_item(item: Mapping[str, Any]) -> TimeOff:
    """Inverse of `time_off_to_item`."""
    return TimeOff.from_snapshot(item)


def request_to_item(request: BookingRequest) -> dict[str, Any]:
    """The booking request item (its events go to the outbox, not here)."""
    return {
        "pk": request_pk(request.clinic_id, request.request_id),
        "sk": REQUEST_SK,
        "clinic_id": request.clinic_id,
        "request_id": request.request_id,
        "country": request.country,
        "command": request.command.to_dict(),
        "created_at": iso(request.created_at),
        "updated_at": iso(request.updated_at),
        "status": str(request.status),
        "appointment_id": request.appointment_id,
        "error": dict(request.error) if request.error is not None else None,
    }


def request_from_item(item: Mapping[str, Any]) -> BookingRequest:
    """Inverse of `request_to_item`."""
    return BookingRequest(
        clinic_id=item["clinic_id"],
        request_id=item["request_id"],
        country=item["country"],
        command=BookAppointment.from_dict(item["command"]),
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        status=RequestStatus(item["status"]),
        appointment_id=item.get("appointment_id"),
        error=dict(item["error"]) if item.get("error") is not None else None,
    )


def processed_to_item(key: str, now: datetime) -> dict[str, Any]:
    """The handled-event marker of `key`, expiring a week after `now`."""
    return {"pk": processed_pk(key), "sk": PROCESSED_SK, "expires_at": epoch(now + PROCESSED_TTL)}


# --- waitlist entries ----------------------------------------------------------------------


def waitlist_to_item(entry: WaitlistEntry) -> dict[str, Any]:
    """The entry item: its snapshot, its doctor's list in gsi1 and, while held, its hold in gsi2.

    The offer stays a nested map (its own `expires_at` is no TTL there); `offer_expires` is
    its expiry as a key-safe instant, for the accept's condition. The item's TTL is a quarter
    after the entry's last date.
    """
    clinic = entry.clinic_id
    item: dict[str, Any] = {
        **entry.snapshot(),
        "pk": waitlist_pk(clinic, entry.waitlist_id),
        "sk": WAITLIST_SK,
        "gsi1pk": waitlist_partition(clinic, entry.doctor_id),
        "gsi1sk": f"{instant(entry.created_at)}#{entry.waitlist_id}",
        "expires_at": epoch(entry.ends_at + WAITLIST_TTL),
    }
    if entry.offer is not None:
        item[OFFER_EXPIRES] = instant(entry.offer.expires_at)
        item["gsi2pk"] = hold_partition(clinic)
        item["gsi2sk"] = f"{hold_position(entry.doctor_id, entry.offer.start)}#{entry.waitlist_id}"
    return item


def waitlist_from_item(item: Mapping[str, Any]) -> WaitlistEntry:
    """Inverse of `waitlist_to_item`."""
    derived = KEY_ATTRIBUTES | {"expires_at", OFFER_EXPIRES}
    return WaitlistEntry.from_snapshot({k: v for k, v in item.items() if k not in derived})
