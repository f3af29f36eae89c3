"""HTTP responses of citas: the JSON shape of every result and of every error.

Every shape the API answers lives here, at the edge; the domain holds no API shape. Instants
go out in the clinic's local time, with its offset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.appointment import Appointment, Patient
from domain.booking_request import BookingRequest
from domain.errors import CitasError
from domain.schedule import Doctor
from domain.text import is_scalar_text
from domain.time_off import TimeOff
from domain.use_cases import Availability, ListResult
from domain.waitlist import WaitlistEntry, WaitStatus

CONTENT_TYPE = "application/json; charset=utf-8"

STATUS_OF_CODE: Mapping[str, int] = {
    "validation_error": 400,
    "not_found": 404,
    "method_not_allowed": 405,
    "slot_unavailable": 409,
    "patient_double_booked": 409,
    "invalid_transition": 409,
    "time_zone_conflict": 409,
    "doctor_unavailable": 409,
    "time_off_conflict": 409,
    "version_conflict": 412,
    "payload_too_large": 413,
    "start_in_past": 422,
    "outside_working_hours": 422,
    "invalid_slot": 422,
    "too_soon": 422,
    "too_far": 422,
    "idempotency_key_reused": 422,
    "offer_expired": 422,
    "temporarily_unavailable": 503,
}


class MethodNotAllowed(CitasError):
    """The path exists but does not take that method."""

    code = "method_not_allowed"


def dumps(payload: object) -> str:
    """Compact JSON that always encodes as UTF-8 (accents kept as they are when they can be)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    if is_scalar_text(text):
        return text
    # Only text that is not Unicode (a lone surrogate) gets here; no value stored before the
    # input rules existed may ever break a response, so it goes out \u-escaped instead.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)


def _local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(timespec="seconds")


def doctor_json(doctor: Doctor) -> dict[str, Any]:
    """The API shape of a doctor."""
    return {
        "doctor_id": doctor.doctor_id,
        "name": doctor.name,
        "country": doctor.country,
        "time_zone": doctor.time_zone,
        "slot_minutes": doctor.slot_minutes,
        "working_hours": doctor.working_hours.to_dict(),
        "buffer_minutes": doctor.buffer_minutes,
        "min_notice_minutes": doctor.min_notice_minutes,
        "booking_horizon_days": doctor.booking_horizon_days,
        "works_on_holidays": doctor.works_on_holidays,
    }


def availability_json(availability: Availability) -> dict[str, Any]:
    """The API shape of a day's free slots, in the doctor's local time."""
    zone = availability.doctor.zone
    return {
        "doctor_id": availability.doctor.doctor_id,
        "date": availability.day.isoformat(),
        "time_zone": availability.doctor.time_zone,
        "slots": [
            {"start": _local(s.start, zone), "end": _local(s.end, zone)} for s in availability.slots
        ],
    }


def time_off_json(block: TimeOff, doctor: Doctor) -> dict[str, Any]:
    """The API shape of a block of time off, in the doctor's local time."""
    out: dict[str, Any] = {
        "time_off_id": block.time_off_id,
        "doctor_id": block.doctor_id,
        "start": _local(block.start, doctor.zone),
        "end": _local(block.end, doctor.zone),
    }
    if block.reason is not None:
        out["reason"] = block.reason
    return out


def time_off_list_json(doctor: Doctor, result: ListResult[TimeOff]) -> dict[str, Any]:
    """A page of a doctor's time off."""
    return {
        "items": [time_off_json(b, doctor) for b in result.items],
        "next_token": result.next_token,
    }


def holidays_json(country: str, year: int, holidays: list[tuple[date, str]]) -> dict[str, Any]:
    """The national holidays of a country in a year."""
    return {
        "country": country,
        "year": year,
        "holidays": [{"date": day.isoformat(), "name": name} for day, name in holidays],
    }


def patient_json(patient: Patient) -> dict[str, str]:
    """The API shape of a patient (returned to the clinic that booked, never logged)."""
    out = {"name": patient.name, "phone": patient.phone}
    if patient.document_id is not None:
        out["document_id"] = patient.document_id
    return out


def appointment_json(appointment: Appointment) -> dict[str, Any]:
    """The API shape of an appointment, instants in the clinic's local time."""
    zone = appointment.zone
    out: dict[str, Any] = {
        "appointment_id": appointment.appointment_id,
        "doctor_id": appointment.doctor_id,
        "country": appointment.country,
        "patient": patient_json(appointment.patient),
        "start": _local(appointment.start, zone),
        "end": _local(appointment.end, zone),
        "duration_minutes": appointment.duration_minutes,
        "status": str(appointment.status),
        "version": appointment.version,
        "created_at": _local(appointment.created_at, zone),
        "updated_at": _local(appointment.updated_at, zone),
        # Still unconfirmed a day before: staff should call (the confirmation cadence).
        "at_risk": appointment.at_risk,
    }
    if appointment.notes is not None:
        out["notes"] = appointment.notes
    return out


def etag(appointment: Appointment) -> str:
    """The strong ETag of an appointment: its version, quoted."""
    return f'"{appointment.version}"'


def list_json(result: ListResult[Appointment]) -> dict[str, Any]:
    """The API shape of a page of appointments."""
    return {
        "items": [appointment_json(a) for a in result.items],
        "next_token": result.next_token,
    }


def request_accepted_json(request: BookingRequest) -> dict[str, Any]:
    """The `202` body of `POST /appointment-requests`."""
    return {"request_id": request.request_id, "status": "pending"}


def booking_request_json(request: BookingRequest) -> dict[str, Any]:
    """The API shape of `GET /appointment-requests/{id}`."""
    out: dict[str, Any] = {"request_id": request.request_id, "status": str(request.status)}
    if request.appointment_id is not None:
        out["appointment_id"] = request.appointment_id
    if request.error is not None:
        out["error"] = dict(request.error)
    return out


def waitlist_json(entry: WaitlistEntry, now: datetime) -> dict[str, Any]:
    """The API shape of a waitlist entry as it stands at `now`, in the doctor's local time."""
    zone = entry.zone
    out: dict[str, Any] = {
        "waitlist_id": entry.waitlist_id,
        "doctor_id": entry.doctor_id,
        "patient": patient_json(entry.patient),
        "from": entry.from_day.isoformat(),
        "to": entry.to_day.isoformat(),
    }
    for name, value in (("earliest", entry.earliest), ("latest", entry.latest)):
        if value is not None:
            out[name] = value.strftime("%H:%M")
    out |= {
        "duration_minutes": entry.duration_minutes,
        "status": str(entry.shown_status(now)),
        "created_at": _local(entry.created_at, zone),
        "updated_at": _local(entry.updated_at, zone),
    }
    offer = entry.offer
    if entry.status is WaitStatus.OFFERED and offer is not None:
        # Not the id of the appointment the offer would become: it exists only once accepted.
        out["offer"] = {
            "start": _local(offer.start, zone),
            "end": _local(offer.end, zone),
            "expires_at": _local(offer.expires_at, zone),
        }
    if entry.status is WaitStatus.BOOKED and entry.appointment_id is not None:
        out["appointment_id"] = entry.appointment_id
    return out


def waitlist_list_json(result: ListResult[WaitlistEntry], now: datetime) -> dict[str, Any]:
    """A page of a doctor's waitlist, oldest first."""
    return {
        "items": [waitlist_json(e, now) for e in result.items],
        "next_token": result.next_token,
    }


def error_status(error: CitasError) -> int:
    """The HTTP status of a domain or edge error (500 for a code the contract lacks)."""
    return STATUS_OF_CODE.get(error.code, 500)


def error_json(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The contract's error body."""
    return {"error": {"code": code, "message": message, "details": dict(details or {})}}


INTERNAL_ERROR = error_json("internal_error", "internal error")
