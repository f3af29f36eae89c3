"""Commands: what a caller asks citas to do, in the imperative."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from attrs import frozen

from domain.appointment import Patient, Status
from domain.pagination import DEFAULT_PAGE


@frozen
class RegisterDoctor:
    """Create or replace a doctor's profile and schedule."""

    doctor_id: str
    name: str
    country: str
    working_hours: Mapping[str, Sequence[Sequence[str]]]
    time_zone: str | None = None
    slot_minutes: int = 30
    buffer_minutes: int = 0
    min_notice_minutes: int = 60
    booking_horizon_days: int = 90
    works_on_holidays: bool = False


@frozen
class PutTimeOff:
    """Create or replace one block of a doctor's time off."""

    doctor_id: str
    time_off_id: str
    start: datetime
    end: datetime
    reason: str | None = None


@frozen
class RemoveTimeOff:
    """Delete one block of a doctor's time off."""

    doctor_id: str
    time_off_id: str


@frozen
class ListTimeOff:
    """A doctor's time off overlapping local dates [from_day, to_day] (both included)."""

    doctor_id: str
    from_day: date
    to_day: date
    limit: int = DEFAULT_PAGE
    next_token: str | None = None


@frozen
class BookAppointment:
    """Book a visit; `duration_minutes` defaults to one of the doctor's slots."""

    doctor_id: str
    patient: Patient
    start: datetime
    duration_minutes: int | None = None
    notes: str | None = None

    def fingerprint_source(self) -> dict[str, Any]:
        """What identifies the request for idempotency: equal requests, equal sources."""
        return {
            "doctor_id": self.doctor_id,
            "patient": self.patient.to_dict(),
            # The instant, not its spelling: 10:00-05:00 and 15:00Z are the same request.
            "start": self.start.timestamp() if self.start.tzinfo else self.start.isoformat(),
            "duration_minutes": self.duration_minutes,
            "notes": self.notes,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for queued booking requests."""
        out: dict[str, Any] = {
            "doctor_id": self.doctor_id,
            "patient": self.patient.to_dict(),
            "start": self.start.isoformat(),
        }
        if self.duration_minutes is not None:
            out["duration_minutes"] = self.duration_minutes
        if self.notes is not None:
            out["notes"] = self.notes
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BookAppointment:
        """Inverse of `to_dict`."""
        return cls(
            doctor_id=raw["doctor_id"],
            patient=Patient.from_dict(raw["patient"]),
            start=datetime.fromisoformat(raw["start"]),
            duration_minutes=raw.get("duration_minutes"),
            notes=raw.get("notes"),
        )


@frozen
class RescheduleAppointment:
    """Move an appointment to another time (and optionally length)."""

    appointment_id: str
    start: datetime
    duration_minutes: int | None = None
    expected_version: int | None = None
    by_patient: bool = False


@frozen
class ChangeStatus:
    """Confirm, cancel, complete or mark a no-show."""

    appointment_id: str
    status: Status
    reason: str | None = None
    expected_version: int | None = None
    # The patient did it (their page or a reply): they are not sent a message about it.
    by_patient: bool = False


@frozen
class CancelAppointment:
    """Cancel and free the time; cancelling a cancelled appointment changes nothing."""

    appointment_id: str
    reason: str | None = None
    expected_version: int | None = None
    by_patient: bool = False


@frozen
class ListDoctorDay:
    """A doctor's appointments of one local date."""

    doctor_id: str
    day: date
    limit: int = DEFAULT_PAGE
    next_token: str | None = None


@frozen
class ListByCountryStatus:
    """Appointments of a country in one status, optionally between two instants."""

    country: str
    status: Status
    start_from: datetime | None = None
    start_to: datetime | None = None
    limit: int = DEFAULT_PAGE
    next_token: str | None = None
    # Only those the confirmation cadence marked at risk (unconfirmed a day before).
    at_risk: bool = False


@frozen
class JoinWaitlist:
    """Put a patient on a doctor's waitlist for local dates [from_day, to_day]."""

    doctor_id: str
    patient: Patient
    from_day: date
    to_day: date
    earliest: time | None = None
    latest: time | None = None
    duration_minutes: int | None = None


@frozen
class ListWaitlist:
    """A doctor's waitlist entries, oldest first."""

    doctor_id: str
    limit: int = DEFAULT_PAGE
    next_token: str | None = None
