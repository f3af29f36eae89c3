"""The appointment aggregate: patient, time, status machine, and the events it records."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from attrs import define, evolve, field

from domain import events as ev
from domain.cadence import Due, Step, due_step
from domain.errors import InvalidTransition, ValidationError
from domain.patient import Patient as Patient  # re-exported: the aggregate names its patient
from domain.patient import check_optional
from domain.schedule import MAX_DURATION_MINUTES, cells
from domain.text import MAX_TEXT

if TYPE_CHECKING:
    from domain.rules import Rules

# The fields `AppointmentRequested` publishes (payload version 1), and of them the patient's;
# optional ones (notes, scheduled_at, document_id) only when set. Enough to rebuild the
# appointment by replaying its events.
REQUESTED_PAYLOAD_V1 = (
    "appointment_id",
    "doctor_id",
    "country",
    "time_zone",
    "patient",
    "start",
    "end",
    "status",
    "version",
    "created_at",
    "updated_at",
    "notes",
    "scheduled_at",
)
PATIENT_V1 = ("name", "phone", "document_id")


class Status(enum.StrEnum):
    """Where an appointment is in its life cycle."""

    REQUESTED = "requested"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"

    @property
    def is_active(self) -> bool:
        """Active appointments hold their time; final ones do not."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset({Status.REQUESTED, Status.CONFIRMED})
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.REQUESTED: frozenset({Status.CONFIRMED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW}),
    Status.CANCELLED: frozenset(),
    Status.COMPLETED: frozenset(),
    Status.NO_SHOW: frozenset(),
}
# Outcomes that describe a visit can only be recorded once the visit's time has come.
_NEEDS_START_PASSED = frozenset({Status.COMPLETED, Status.NO_SHOW})
_EVENT_FOR: Mapping[Status, type[ev.Event]] = {
    Status.CONFIRMED: ev.AppointmentConfirmed,
    Status.CANCELLED: ev.AppointmentCancelled,
    Status.COMPLETED: ev.AppointmentCompleted,
    Status.NO_SHOW: ev.AppointmentMarkedNoShow,
}


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` in UTC, or raise ValidationError if it carries no UTC offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must carry a UTC offset", field=name)
    return value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@define
class Appointment:
    """One booked visit. Times are UTC inside; `time_zone` is the clinic's, for display."""

    clinic_id: str
    appointment_id: str
    doctor_id: str
    country: str
    time_zone: str
    patient: Patient
    start: datetime
    end: datetime
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime
    notes: str | None = None
    # When the current time was chosen (booking or last reschedule): a reminder is only
    # useful for appointments set before their 24-hour mark.
    scheduled_at: datetime | None = None
    # The start time the cadence steps in `cadence_sent` were sent for: a reschedule starts
    # the cadence again.
    cadence_start: datetime | None = None
    cadence_sent: frozenset[Step] = frozenset()
    # Still unconfirmed a day before (set by the cadence, cleared by any change of the clinic's
    # or the patient's): staff should call.
    at_risk: bool = False
    events: list[ev.Event] = field(factory=list, eq=False, repr=False)

    @classmethod
    def request(
        cls,
        *,
        appointment_id: str,
        rules: Rules,
        patient: Patient,
        start: datetime,
        duration_minutes: int,
        notes: str | None,
        event_id: str,
    ) -> Appointment:
        """Book a new appointment in status `requested`, checking every booking rule."""
        start = require_aware(start, "start")
        check_optional(notes, None, "notes", MAX_TEXT)
        _check_duration(duration_minutes)
        rules.check(start, duration_minutes)
        doctor, now = rules.doctor, rules.now
        appointment = cls(
            # A doctor books only in its own clinic: the visit belongs where the doctor does.
            clinic_id=doctor.clinic_id,
            appointment_id=appointment_id,
            doctor_id=doctor.doctor_id,
            country=doctor.country,
            time_zone=doctor.time_zone,
            patient=patient,
            start=start,
            end=start + timedelta(minutes=duration_minutes),
            status=Status.REQUESTED,
            version=1,
            created_at=now,
            updated_at=now,
            notes=notes,
            scheduled_at=now,
        )
        appointment._record(ev.AppointmentRequested, now, event_id, appointment.requested_payload())
        return appointment

    @property
    def duration_minutes(self) -> int:
        """Length of the visit."""
        return int((self.end - self.start).total_seconds() // 60)

    @property
    def is_active(self) -> bool:
        """Whether the appointment holds its time."""
        return self.status.is_active

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's zone."""
        return ZoneInfo(self.time_zone)

    def doctor_cells(self) -> tuple[datetime, ...]:
        """The grid cells of the doctor this appointment holds while active."""
        return cells(self.start, self.end)

    def patient_cells(self) -> tuple[datetime, ...]:
        """The grid cells of the patient this appointment holds while active."""
        return cells(self.start, self.end)

    def transition(
        self,
        target: Status,
        *,
        now: datetime,
        event_id: str,
        reason: str | None = None,
        by_patient: bool = False,
    ) -> None:
        """Move to `target` if the status machine and the time rules allow it.

        `by_patient`: the patient did it (their page or reply), so they are not told again.
        """
        check_optional(reason, None, "reason", MAX_TEXT)
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(
                f"cannot go from {self.status} to {target}",
                status=str(self.status),
                requested=str(target),
                allowed=sorted(TRANSITIONS[self.status]),
            )
        if target in _NEEDS_START_PASSED and now < self.start:
            raise InvalidTransition(
                f"{target} can only be recorded once the appointment has started",
                status=str(self.status),
                requested=str(target),
            )
        previous = self.status
        self.status = target
        self.at_risk = False
        data: dict[str, Any] = {
            "status": str(target),
            "previous_status": str(previous),
            # What a message about the change needs, without another read.
            "start": _iso(self.start),
            "end": _iso(self.end),
        }
        if reason:
            data["reason"] = reason
        if by_patient:
            data["by"] = "patient"
        self._changed(_EVENT_FOR[target], now, event_id, data)

    def reschedule(
        self,
        *,
        rules: Rules,
        start: datetime,
        duration_minutes: int | None,
        event_id: str,
        by_patient: bool = False,
    ) -> None:
        """Move to a new future time of the same doctor; the status goes back to requested."""
        if not self.is_active:
            raise InvalidTransition(
                f"a {self.status} appointment cannot be rescheduled", status=str(self.status)
            )
        if rules.doctor.doctor_id != self.doctor_id:
            raise ValueError("an appointment moves only within its own doctor's schedule")
        start = require_aware(start, "start")
        minutes = self.duration_minutes if duration_minutes is None else duration_minutes
        _check_duration(minutes)
        rules.check(start, minutes)
        now = rules.now
        data = {
            "previous_start": _iso(self.start),
            "previous_end": _iso(self.end),
            "previous_status": str(self.status),
        }
        self.start = start
        self.end = start + timedelta(minutes=minutes)
        self.status = Status.REQUESTED
        self.scheduled_at = now
        self.at_risk = False
        if by_patient:
            data["by"] = "patient"
        self._changed(
            ev.AppointmentRescheduled,
            now,
            event_id,
            {**data, "start": _iso(self.start), "end": _iso(self.end), "status": "requested"},
        )

    @property
    def sent_steps(self) -> frozenset[Step]:
        """The cadence steps already sent for the current start time."""
        return self.cadence_sent if self.cadence_start == self.start else frozenset()

    def due_step(self, now: datetime) -> Due | None:
        """The cadence step due at `now` (domain.cadence), or None."""
        if not self.is_active:
            return None
        return due_step(
            status=self.status,
            start=self.start,
            scheduled_at=self.scheduled_at,
            sent=self.sent_steps,
            now=now,
        )

    def record_step(self, step: Step, *, now: datetime, event_id: str) -> None:
        """Record that cadence `step` is sent for the current start, with its event.

        Not a change the clinic made, so the version stays: an `If-Match` a receptionist
        holds must not fail because a reminder went out.
        """
        self.cadence_sent = self.sent_steps | {step}
        self.cadence_start = self.start
        data: dict[str, Any] = {"start": _iso(self.start), "end": _iso(self.end), "step": str(step)}
        if step is Step.ASK_48H:
            kind: type[ev.Event] = ev.ConfirmationRequested
        elif step is Step.AT_RISK_24H:
            self.at_risk = True
            kind = ev.AppointmentAtRisk
        else:
            kind = ev.ReminderDue
            data["lead_hours"] = 24 if step is Step.REMIND_24H else 2
        self._record(kind, now, event_id, data)

    def _changed(
        self, kind: type[ev.Event], now: datetime, event_id: str, data: dict[str, Any]
    ) -> None:
        self.version += 1
        self.updated_at = now
        self._record(kind, now, event_id, data)

    def _record(
        self, kind: type[ev.Event], now: datetime, event_id: str, data: dict[str, Any]
    ) -> None:
        """Raise an event of this appointment at its current version."""
        self.events.append(
            kind(
                event_id=event_id,
                clinic_id=self.clinic_id,
                appointment_id=self.appointment_id,
                version=self.version,
                occurred_at=now,
                data=data,
            )
        )

    def requested_payload(self) -> dict[str, Any]:
        """The `data` of `AppointmentRequested`, as the contract publishes it (version 1).

        Named field by field, apart from the stored form: a field added to storage (to
        `snapshot`) never silently changes a published event; a new event field is a new
        entry here, and a new payload version if consumers must tell the two apart.
        """
        stored = self.snapshot()
        payload = {k: stored[k] for k in REQUESTED_PAYLOAD_V1 if k in stored}
        payload["patient"] = {k: v for k, v in stored["patient"].items() if k in PATIENT_V1}
        return payload

    def snapshot(self) -> dict[str, Any]:
        """The stored form: everything needed to rebuild the appointment, instants in UTC."""
        out: dict[str, Any] = {
            "clinic_id": self.clinic_id,
            "appointment_id": self.appointment_id,
            "doctor_id": self.doctor_id,
            "country": self.country,
            "time_zone": self.time_zone,
            "patient": self.patient.to_dict(),
            "start": _iso(self.start),
            "end": _iso(self.end),
            "status": str(self.status),
            "version": self.version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }
        if self.notes is not None:
            out["notes"] = self.notes
        if self.scheduled_at is not None:
            out["scheduled_at"] = _iso(self.scheduled_at)
        if self.cadence_start is not None:
            out["cadence_start"] = _iso(self.cadence_start)
            out["cadence_sent"] = sorted(str(step) for step in self.cadence_sent)
        if self.at_risk:
            out["at_risk"] = True
        return out

    @classmethod
    def from_snapshot(cls, raw: Mapping[str, Any]) -> Appointment:
        """Inverse of `snapshot`."""
        scheduled = raw.get("scheduled_at")
        cadence_start = raw.get("cadence_start")
        sent = frozenset(Step(s) for s in raw.get("cadence_sent") or ())
        if cadence_start is None and raw.get("reminded_start"):
            # Stored before the cadence: its one reminder was the 24-hour one.
            cadence_start, sent = raw["reminded_start"], frozenset({Step.REMIND_24H})
        return cls(
            clinic_id=raw["clinic_id"],
            appointment_id=raw["appointment_id"],
            doctor_id=raw["doctor_id"],
            country=raw["country"],
            time_zone=raw["time_zone"],
            patient=Patient.from_dict(raw["patient"]),
            start=datetime.fromisoformat(raw["start"]),
            end=datetime.fromisoformat(raw["end"]),
            status=Status(raw["status"]),
            version=int(raw["version"]),
            created_at=datetime.fromisoformat(raw["created_at"]),
            updated_at=datetime.fromisoformat(raw["updated_at"]),
            notes=raw.get("notes"),
            scheduled_at=datetime.fromisoformat(scheduled) if scheduled else None,
            cadence_start=datetime.fromisoformat(cadence_start) if cadence_start else None,
            cadence_sent=sent,
            at_risk=bool(raw.get("at_risk", False)),
        )

    def copy(self) -> Appointment:
        """An independent copy without pending events (aggregates are mutable)."""
        return evolve(self, events=[])

    def collect_new_events(self) -> list[ev.Event]:
        """Hand over the events raised since the last commit; a repository calls it on commit."""
        new, self.events = self.events, []
        return new

    @classmethod
    def replay(cls, history: Iterable[ev.Event]) -> Appointment:
        """Rebuild an appointment from its events, oldest first."""
        stream = iter(history)
        first = next(stream)
        if not isinstance(first, ev.AppointmentRequested):
            raise ValueError("a history starts with AppointmentRequested")
        # The published payload names no clinic: the envelope does.
        appointment = cls.from_snapshot({**first.data, "clinic_id": first.clinic_id})
        for event in stream:
            appointment._apply(event)
        return appointment

    def _apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.ReminderDue | ev.ConfirmationRequested | ev.AppointmentAtRisk):
            # Published before the cadence, a ReminderDue names no step: the 24-hour one.
            step = Step(event.data.get("step", Step.REMIND_24H))
            start = datetime.fromisoformat(event.data["start"])
            if self.cadence_start != start:
                self.cadence_sent = frozenset()
            self.cadence_start = start
            self.cadence_sent = self.cadence_sent | {step}
            self.at_risk = self.at_risk or step is Step.AT_RISK_24H
            return
        if isinstance(event, ev.AppointmentRescheduled):
            self.start = datetime.fromisoformat(event.data["start"])
            self.end = datetime.fromisoformat(event.data["end"])
            self.scheduled_at = event.occurred_at
        self.at_risk = False
        self.status = Status(event.data["status"])
        self.version = event.version
        self.updated_at = event.occurred_at


def _check_duration(minutes: int) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise ValidationError("duration_minutes must be an integer", field="duration_minutes")
    if not 1 <= minutes <= MAX_DURATION_MINUTES:
        raise ValidationError(
            f"duration_minutes is 1-{MAX_DURATION_MINUTES}", field="duration_minutes"
        )
