"""Domain events: what happened to an appointment, as facts in the past tense."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from attrs import field, frozen


@frozen
class Event:
    """Base of every event; `type` is the class name, `data` holds JSON-ready values."""

    event_id: str
    # The tenant: consumers answer in its voice, and nothing of one clinic reaches another.
    clinic_id: str
    appointment_id: str | None
    version: int
    occurred_at: datetime
    data: Mapping[str, Any] = field(factory=dict)

    @property
    def type(self) -> str:
        """The event type as published, e.g. `AppointmentRequested`."""
        return type(self).__name__

    @property
    def group_key(self) -> str:
        """What orders the event: its appointment, else its booking request, else its doctor."""
        if self.appointment_id:
            return self.appointment_id
        if "request_id" in self.data:
            return str(self.data["request_id"])
        if "waitlist_id" in self.data:
            # A waitlist entry's offers, in order.
            return f"{self.clinic_id}#waitlist#{self.data['waitlist_id']}"
        if "patient_key" in self.data:
            # A phone's opt-out and opt-in, in order; the key is a hash, never the phone.
            return f"{self.clinic_id}#patient#{self.data['patient_key']}"
        # A doctor's schedule changes, in order; doctor ids are per clinic.
        return f"{self.clinic_id}#doctor#{self.data['doctor_id']}"

    def to_envelope(self) -> dict[str, Any]:
        """The contract's JSON envelope."""
        return {
            "event_id": self.event_id,
            "type": self.type,
            "clinic_id": self.clinic_id,
            "occurred_at": self.occurred_at.isoformat(),
            "appointment_id": self.appointment_id,
            "version": self.version,
            "data": dict(self.data),
        }


@frozen
class AppointmentRequested(Event):
    """An appointment was booked and waits for confirmation."""


@frozen
class AppointmentConfirmed(Event):
    """The clinic or the patient confirmed the appointment."""


@frozen
class AppointmentRescheduled(Event):
    """The appointment moved to another time; it waits for confirmation again."""


@frozen
class AppointmentCancelled(Event):
    """The appointment was cancelled and its time freed."""


@frozen
class AppointmentCompleted(Event):
    """The patient was seen."""


@frozen
class AppointmentMarkedNoShow(Event):
    """The patient did not come."""


@frozen
class BookingRequestRejected(Event):
    """An asynchronous booking request could not be booked."""


@frozen
class ReminderDue(Event):
    """The appointment is about a day away: remind the patient, once."""


@frozen
class ConfirmationRequested(Event):
    """The appointment is still unconfirmed 48 hours before: ask the patient again, once."""


@frozen
class AppointmentAtRisk(Event):
    """A day before, the appointment is still unconfirmed: staff should call, and we remind."""


@frozen
class PatientOptedOut(Event):
    """A phone wrote BAJA or STOP: no more messages from this clinic until it writes ALTA.

    `data` = {"patient_key"}: the phone's pseudonym, never the phone.
    """


@frozen
class TimeOffAdded(Event):
    """A doctor's time off was created or replaced; `version` is the doctor's schedule version."""


@frozen
class TimeOffRemoved(Event):
    """A doctor's time off was removed; its time is bookable again."""


@frozen
class WaitlistOfferMade(Event):
    """A freed slot is held for a waitlist entry until `data.expires_at`; the patient is asked.

    `data` = {"waitlist_id", "doctor_id", "appointment_id" (what accepting books), "start",
    "end", "expires_at"}.
    """


@frozen
class WaitlistOfferAccepted(Event):
    """The patient took the offer: its appointment is booked `confirmed`, in the same write."""


@frozen
class WaitlistOfferExpired(Event):
    """An offer ended unbooked (`data.reason`: declined, expired, withdrawn); its slot is free."""


EVENT_TYPES: Mapping[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        AppointmentRequested,
        AppointmentConfirmed,
        AppointmentRescheduled,
        AppointmentCancelled,
        AppointmentCompleted,
        AppointmentMarkedNoShow,
        BookingRequestRejected,
        ReminderDue,
        ConfirmationRequested,
        AppointmentAtRisk,
        PatientOptedOut,
        TimeOffAdded,
        TimeOffRemoved,
        WaitlistOfferMade,
        WaitlistOfferAccepted,
        WaitlistOfferExpired,
    )
}


def event_from_envelope(envelope: Mapping[str, Any]) -> Event:
    """Rebuild an event from its JSON envelope."""
    cls = EVENT_TYPES[envelope["type"]]
    return cls(
        event_id=envelope["event_id"],
        clinic_id=envelope["clinic_id"],
        appointment_id=envelope["appointment_id"],
        version=int(envelope["version"]),
        occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
        data=dict(envelope["data"]),
    )
