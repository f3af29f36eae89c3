"""What the use cases need from storage. Each method is one atomic step on every backend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from attrs import frozen

from domain.appointment import Appointment, Status
from domain.booking_request import BookingRequest
from domain.events import Event
from domain.rules import Schedule
from domain.schedule import Doctor
from domain.time_off import TimeOff
from domain.waitlist import Offer, WaitlistEntry
from ports.patients import DeferredMessages, PatientContacts

T = TypeVar("T")


@frozen
class IdempotencyRecord:
    """A booking request seen before: its fingerprint and the appointment it made."""

    key: str
    fingerprint: str
    appointment_id: str


# A backend's place in a list, opaque to the domain; None asks for the first page.
Cursor = Mapping[str, Any] | None


@frozen
class Window:
    """Start times in [start_from, start_to); a bound left out is open."""

    start_from: datetime | None = None
    start_to: datetime | None = None


@frozen
class Page(Generic[T]):
    """One page of a list; `cursor` is None on the last page."""

    items: Sequence[T]
    cursor: Cursor


class AppointmentRepository(Protocol):
    """Appointments with their doctor and patient time locks, versions and outbox events."""

    def add(
        self,
        appointment: Appointment,
        idempotency: IdempotencyRecord | None,
        schedule: Schedule,
    ) -> None:
        """Store a new appointment, lock its cells, keep the key and its events, all or nothing.

        `schedule` is what the booking rules were checked against: the write commits only
        while the doctor is still at `schedule.version`, and only if no active appointment of
        the doctor lies within `schedule.buffer` of it. Raises ScheduleChanged,
        SlotUnavailable, PatientDoubleBooked or IdempotencyKeyTaken; on any error nothing
        was written.
        """
        ...

    def update(
        self, previous: Appointment, current: Appointment, schedule: Schedule | None = None
    ) -> None:
        """Replace `previous` by `current` if nobody changed it since, moving or freeing locks.

        Raises VersionConflict if the stored version is not `previous.version`, and
        SlotUnavailable or PatientDoubleBooked if new time is taken; then nothing changed.
        A change that moves the time passes the `schedule` it was checked against, as `add`.
        """
        ...

    def get(self, appointment_id: str) -> Appointment | None:
        """The appointment, or None."""
        ...

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record stored under an idempotency key, or None."""
        ...

    def list_by_doctor(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page[Appointment]:
        """A doctor's appointments with start in [start_from, start_to), by start time.

        Raises InvalidCursor for a cursor it did not make.
        """
        ...

    def list_by_country_status(
        self,
        country: str,
        status: Status,
        window: Window,
        limit: int,
        cursor: Cursor,
        *,
        at_risk: bool = False,
    ) -> Page[Appointment]:
        """Appointments of a country in a status with start in the window, by start time.

        `at_risk`: only those the cadence marked at risk (pages are as full as without it).
        """
        ...

    def record_cadence(self, previous: Appointment, current: Appointment) -> bool:
        """Store a cadence step (its marks, `at_risk`) and its event unless anything changed.

        Returns False (and writes nothing) if the version moved or the step was already
        recorded for this start, so each step of each start time goes out at most once.
        """
        ...


class DoctorRepository(Protocol):
    """Doctors' profiles, their time off, and the schedule version both share."""

    def put(self, doctor: Doctor, *, keep_zone: bool = False) -> bool:
        """Create or replace, bumping the schedule version; True if the doctor is new.

        With `keep_zone`, only create, or replace a doctor of the same time zone: otherwise
        nothing is written and `ZoneChanged` is raised.
        """
        ...

    def get(self, doctor_id: str) -> Doctor | None:
        """The doctor, or None."""
        ...

    def schedule(self, doctor_id: str, since: datetime) -> Schedule | None:
        """The doctor, its schedule version and its time off ending after `since`; or None.

        Strongly consistent and atomic (never half of a concurrent change): what a booking
        is checked against.
        """
        ...

    def get_time_off(self, doctor_id: str, time_off_id: str) -> TimeOff | None:
        """One block of time off, or None."""
        ...

    def put_time_off(self, block: TimeOff, schedule: Schedule, event: Event) -> None:
        """Create or replace a block, bump the version and keep `event`, all or nothing.

        `schedule` is the doctor's, as just read: the change commits only while the doctor
        is still at its version, and only if no active appointment of the doctor overlaps
        the block, even against concurrent bookings. Raises ScheduleChanged or
        TimeOffConflict (naming the appointments); then nothing changed.
        """
        ...

    def remove_time_off(self, block: TimeOff, schedule: Schedule, event: Event) -> None:
        """Delete a block, bump the version and keep `event`, while at `schedule.version`.

        Raises ScheduleChanged otherwise (nothing changed).
        """
        ...

    def list_time_off(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page[TimeOff]:
        """A doctor's blocks that overlap [start_from, start_to), by start.

        Raises InvalidCursor for a cursor it did not make.
        """
        ...


class BookingRequestRepository(Protocol):
    """Asynchronous booking requests and their outcome."""

    def add(self, request: BookingRequest) -> None:
        """Store a new pending request."""
        ...

    def get(self, request_id: str) -> BookingRequest | None:
        """The request, or None."""
        ...

    def save(self, request: BookingRequest) -> None:
        """Store the outcome of a request with its events, only while it is still pending."""
        ...


class EventOutbox(Protocol):
    """Events committed with their change and not yet published."""

    def pending(self, limit: int) -> Sequence[Event]:
        """The oldest unpublished events."""
        ...

    def remove(self, event_ids: Sequence[str]) -> None:
        """Forget events once they are published."""
        ...


class ProcessedEvents(Protocol):
    """Which events a consumer already handled, so a redelivered event does nothing twice."""

    def seen(self, key: str) -> bool:
        """Whether `key` (consumer + event id) was handled."""
        ...

    def remember(self, key: str) -> None:
        """Record `key` as handled (kept for a week: longer than any redelivery)."""
        ...


class ClinicRepositories(Protocol):
    """Builds the repositories of one clinic: every key they read or write starts with its id."""

    def appointments(self, clinic_id: str) -> AppointmentRepository:
        """The clinic's appointments."""
        ...

    def doctors(self, clinic_id: str) -> DoctorRepository:
        """The clinic's doctors."""
        ...

    def requests(self, clinic_id: str) -> BookingRequestRepository:
        """The clinic's booking requests."""
        ...

    def contacts(self, clinic_id: str) -> PatientContacts:
        """The clinic's patient contacts: opt-outs and awaited answers."""
        ...

    def deferred(self, clinic_id: str) -> DeferredMessages:
        """The clinic's messages held back by quiet hours."""
        ...

    def waitlist(self, clinic_id: str) -> WaitlistRepository:
        """The clinic's waitlist entries and their offers' holds."""
        ...


class WaitlistRepository(Protocol):
    """Waitlist entries and the slots held for their offers, in the doctor's cells.

    An offer's hold is the doctor's cells taken in the name of the appointment the offer would
    become (`Offer.appointment_id`): no booking or move can take them, and accepting books that
    appointment over its own cells. Every change checks the entry's version, so an entry has at
    most one offer and an offer ends exactly once.
    """

    def add(self, entry: WaitlistEntry) -> None:
        """Store a new waiting entry."""
        ...

    def get(self, waitlist_id: str) -> WaitlistEntry | None:
        """The entry (strongly consistent), or None."""
        ...

    def list_by_doctor(
        self, doctor_id: str, limit: int, cursor: Cursor, *, waiting: bool = False
    ) -> Page[WaitlistEntry]:
        """A doctor's entries, oldest first; `waiting`: only those stored as waiting.

        Raises InvalidCursor for a cursor it did not make.
        """
        ...

    def holds(self, doctor_id: str, start_from: datetime, start_to: datetime) -> Sequence[Offer]:
        """The offers holding a doctor's time with start in [start_from, start_to), by start."""
        ...

    def offered(self) -> Sequence[WaitlistEntry]:
        """Every entry of the clinic with an offer (live or run out), soonest expiry first."""
        ...

    def offer(self, previous: WaitlistEntry, current: WaitlistEntry, schedule: Schedule) -> None:
        """Hold `current.offer` for the entry and keep its event, all or nothing.

        Commits only while the entry is at `previous.version`, the doctor at
        `schedule.version`, the offered cells and the doctor's buffer around them free, and
        the patient's cells free. Raises VersionConflict, ScheduleChanged, SlotUnavailable or
        PatientDoubleBooked; then nothing changed.
        """
        ...

    def accept(
        self,
        previous: WaitlistEntry,
        current: WaitlistEntry,
        appointment: Appointment,
        schedule: Schedule,
    ) -> None:
        """Book `appointment` over the held cells and store the booked entry, all or nothing.

        Commits only while the entry is at `previous.version` with its offer not expired at
        `current.updated_at`. Raises OfferExpired, VersionConflict, ScheduleChanged or
        PatientDoubleBooked (the patient booked that time meanwhile); then nothing changed.
        """
        ...

    def release(self, previous: WaitlistEntry, current: WaitlistEntry, offer: Offer) -> None:
        """Free the cells `offer` held and store the entry without it, with its events.

        Commits only while the entry is at `previous.version` (VersionConflict otherwise).
        """
        ...

    def save(self, previous: WaitlistEntry, current: WaitlistEntry) -> None:
        """Store a change that holds no time (a waiting entry withdrawn).

        Commits only while the entry is at `previous.version` (VersionConflict otherwise).
        """
        ...
