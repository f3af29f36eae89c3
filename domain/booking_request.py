"""Asynchronous booking requests: accepted now, booked later in order per doctor."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import define, field

from domain import events as ev
from domain.clinics import CLINIC_ID
from domain.commands import BookAppointment
from domain.errors import CitasError, ValidationError
from domain.text import matches


class RequestStatus(enum.StrEnum):
    """Where a booking request is."""

    PENDING = "pending"
    BOOKED = "booked"
    REJECTED = "rejected"


@define
class BookingRequest:
    """A booking asked for now and made by the country's worker later."""

    clinic_id: str
    request_id: str
    country: str
    command: BookAppointment
    created_at: datetime
    updated_at: datetime
    status: RequestStatus = RequestStatus.PENDING
    appointment_id: str | None = None
    error: dict[str, str] | None = None
    events: list[ev.Event] = field(factory=list, eq=False, repr=False)

    def collect_new_events(self) -> list[ev.Event]:
        """Hand over the events raised since the last commit; a repository calls it on commit."""
        new, self.events = self.events, []
        return new

    def booked(self, appointment_id: str, now: datetime) -> None:
        """The worker booked it."""
        self.status = RequestStatus.BOOKED
        self.appointment_id = appointment_id
        self.updated_at = now

    def rejected(self, error: CitasError, now: datetime, event_id: str) -> None:
        """The worker could not book it; nothing was booked."""
        self.status = RequestStatus.REJECTED
        self.error = {"code": error.code, "message": error.message}
        self.updated_at = now
        self.events.append(
            ev.BookingRequestRejected(
                event_id=event_id,
                clinic_id=self.clinic_id,
                appointment_id=None,
                version=1,
                occurred_at=now,
                data={
                    "request_id": self.request_id,
                    "doctor_id": self.command.doctor_id,
                    "country": self.country,
                    "error": dict(self.error),
                },
            )
        )

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready queue message: all a worker needs to store and book the request."""
        return {
            "clinic_id": self.clinic_id,
            "request_id": self.request_id,
            "country": self.country,
            "created_at": self.created_at.isoformat(),
            "command": self.command.to_dict(),
        }

    @classmethod
    def from_message(cls, raw: Mapping[str, Any]) -> BookingRequest:
        """Inverse of `to_message`: the request as it was queued, still pending.

        ValidationError when the message is not one.
        """
        try:
            clinic_id, request_id, country = raw["clinic_id"], raw["request_id"], raw["country"]
            created_at = datetime.fromisoformat(raw["created_at"])
            command = BookAppointment.from_dict(raw["command"])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValidationError("not a queued booking request", field="message") from e
        if not isinstance(request_id, str) or not request_id or not isinstance(country, str):
            raise ValidationError("not a queued booking request", field="message")
        if not isinstance(clinic_id, str) or not matches(CLINIC_ID, clinic_id):
            raise ValidationError("not a queued booking request", field="message")
        if created_at.tzinfo is None or command.start.tzinfo is None:
            raise ValidationError("not a queued booking request", field="message")
        return cls(
            clinic_id=clinic_id,
            request_id=request_id,
            country=country,
            command=command,
            created_at=created_at,
            updated_at=created_at,
        )
