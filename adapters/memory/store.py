"""In-memory backend: one lock around plain dictionaries, the same guarantees as DynamoDB."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import evolve

# Re-exported: the memory backend's pieces have always been importable from here.
from adapters.memory.messaging import InMemoryBookingRequestQueue as InMemoryBookingRequestQueue
from adapters.memory.messaging import InMemoryEventPublisher as InMemoryEventPublisher
from adapters.memory.messaging import InMemoryNotifier as InMemoryNotifier
from domain.appointment import Appointment, Status
from domain.booking_request import BookingRequest, RequestStatus
from domain.clinics import require_clinic
from domain.errors import (
    IdempotencyKeyTaken,
    InvalidCursor,
    PatientDoubleBooked,
    ScheduleChanged,
    SlotUnavailable,
    VersionConflict,
)
from domain.events import Event
from domain.rules import Schedule
from domain.schedule import Doctor, cells
from domain.time_off import TimeOff
from domain.waitlist import WaitlistEntry
from ports.patients import Contact, DeferredMessage, SentMessage
from ports.repositories import Cursor, IdempotencyRecord, Page, Window

if TYPE_CHECKING:
    from adapters.memory.doctors import InMemoryDoctorRepository
    from adapters.memory.patients import InMemoryDeferredMessages, InMemoryPatientContacts
    from adapters.memory.waitlist import InMemoryWaitlistRepository

# (clinic, "doctor" or "patient", doctor id or patient key, cell start)
CellKey = tuple[str, str, str, datetime]
# Every record is kept under (clinic id, its own id): ids are per clinic, as on DynamoDB.
Key = tuple[str, str]


class MemoryStore:
    """Everything the memory adapters keep; `lock` makes each adapter call atomic."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.appointments: dict[Key, Appointment] = {}
        self.cells: dict[CellKey, str] = {}
        self.idempotency: dict[Key, IdempotencyRecord] = {}
        # The relay's work list, shared by every clinic; each event names its own.
        self.outbox: collections.OrderedDict[str, Event] = collections.OrderedDict()
        self.doctors: dict[Key, Doctor] = {}
        # (clinic, doctor) -> the schedule version every profile or time-off change bumps.
        self.schedule_versions: dict[Key, int] = {}
        self.time_off: dict[tuple[str, str, str], TimeOff] = {}
        self.requests: dict[Key, BookingRequest] = {}
        self.processed: set[str] = set()
        # Contacts and held messages per (clinic, key); sent messages by provider message id.
        self.contacts: dict[Key, Contact] = {}
        self.sent: dict[str, SentMessage] = {}
        self.deferred: dict[Key, DeferredMessage] = {}
        # Waitlist entries; an offer's hold is its doctor cells in `cells`, in the offer's name.
        self.waitlist: dict[Key, WaitlistEntry] = {}


def _doctor_cells(appointment: Appointment) -> set[CellKey]:
    if not appointment.is_active:
        return set()
    clinic, doctor = appointment.clinic_id, appointment.doctor_id
    return {(clinic, "doctor", doctor, c) for c in appointment.doctor_cells()}


def _patient_cells(appointment: Appointment) -> set[CellKey]:
    if not appointment.is_active:
        return set()
    clinic, patient = appointment.clinic_id, appointment.patient.key
    return {(clinic, "patient", patient, c) for c in appointment.patient_cells()}


def _buffer_cells(appointment: Appointment, schedule: Schedule | None) -> set[CellKey]:
    """The doctor's cells within the buffer around `appointment`: they must be free, not held."""
    if schedule is None or not appointment.is_active or not schedule.doctor.buffer_minutes:
        return set()
    pad = schedule.buffer
    start, end = appointment.start, appointment.end
    clinic, doctor = appointment.clinic_id, appointment.doctor_id
    around = cells(start - pad, start) + cells(end, end + pad)
    return {(clinic, "doctor", doctor, c) for c in around} - _doctor_cells(appointment)


def check_schedule(store: MemoryStore, clinic_id: str, doctor_id: str, schedule: Schedule) -> None:
    """ScheduleChanged unless the doctor is still at the version the rules were checked on."""
    if (
        schedule.doctor.doctor_id != doctor_id
        or store.schedule_versions.get((clinic_id, doctor_id)) != schedule.version
    ):
        raise ScheduleChanged(doctor_id)


def sort_key(appointment: Appointment) -> tuple[datetime, str]:
    """The order of lists: by start, then id."""
    return appointment.start, appointment.appointment_id


class InMemoryAppointmentRepository:
    """One clinic's appointments, cell locks, idempotency keys and outbox in a `MemoryStore`."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        self._store = store
        self._clinic = clinic_id

    def add(
        self,
        appointment: Appointment,
        idempotency: IdempotencyRecord | None,
        schedule: Schedule,
    ) -> None:
        """Store a new appointment with its locks, key and events, all or nothing."""
        require_clinic(self._clinic, appointment.clinic_id, "an appointment")
        s = self._store
        with s.lock:
            if idempotency is not None and (self._clinic, idempotency.key) in s.idempotency:
                raise IdempotencyKeyTaken(idempotency.key)
            check_schedule(s, appointment.clinic_id, appointment.doctor_id, schedule)
            self._claim(
                appointment.appointment_id,
                _doctor_cells(appointment) | _buffer_cells(appointment, schedule),
                set(),
            )
            self._claim(appointment.appointment_id, set(), _patient_cells(appointment))
            for cell in _doctor_cells(appointment) | _patient_cells(appointment):
                s.cells[cell] = appointment.appointment_id
            if idempotency is not None:
                s.idempotency[self._clinic, idempotency.key] = idempotency
            s.appointments[self._clinic, appointment.appointment_id] = appointment.copy()
            self._keep(appointment.collect_new_events())

    def update(
        self, previous: Appointment, current: Appointment, schedule: Schedule | None = None
    ) -> None:
        """Replace the stored appointment if its version is still `previous.version`."""
        require_clinic(self._clinic, current.clinic_id, "an appointment")
        s = self._store
        with s.lock:
            stored = s.appointments.get((self._clinic, previous.appointment_id))
            if stored is None or stored.version != previous.version:
                raise VersionConflict(
                    "the appointment changed meanwhile",
                    expected=previous.version,
                    actual=None if stored is None else stored.version,
                )
            if schedule is not None:
                check_schedule(s, current.clinic_id, current.doctor_id, schedule)
            old = _doctor_cells(stored) | _patient_cells(stored)
            new_doctor, new_patient = _doctor_cells(current), _patient_cells(current)
            around = _buffer_cells(current, schedule)
            self._claim(current.appointment_id, (new_doctor | around) - old, new_patient - old)
            for cell in old - (new_doctor | new_patient):
                if s.cells.get(cell) == current.appointment_id:
                    del s.cells[cell]
            for cell in (new_doctor | new_patient) - old:
                s.cells[cell] = current.appointment_id
            kept = current.copy()
            if (current.cadence_start, current.cadence_sent) == (
                previous.cadence_start,
                previous.cadence_sent,
            ):
                # A cadence step keeps the version, so it may have been recorded after
                # `previous` was read: keep it rather than write back the stale "not sent".
                kept.cadence_start = stored.cadence_start
                kept.cadence_sent = stored.cadence_sent
            s.appointments[self._clinic, current.appointment_id] = kept
            self._keep(current.collect_new_events())

    def _claim(self, owner: str, doctor: set[CellKey], patient: set[CellKey]) -> None:
        cells = self._store.cells
        if any(cells.get(c, owner) != owner for c in doctor):
            raise SlotUnavailable.taken()
        if any(cells.get(c, owner) != owner for c in patient):
            raise PatientDoubleBooked.taken()

    def _keep(self, events: Sequence[Event]) -> None:
        for event in events:
            self._store.outbox[event.event_id] = event

    def get(self, appointment_id: str) -> Appointment | None:
        """A copy of the stored appointment, or None."""
        with self._store.lock:
            found = self._store.appointments.get((self._clinic, appointment_id))
            return found.copy() if found is not None else None

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record under `key`, or None."""
        with self._store.lock:
            return self._store.idempotency.get((self._clinic, key))

    def list_by_doctor(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page[Appointment]:
        """A doctor's appointments with start in [start_from, start_to), by start."""
        return self._page(
            lambda a: a.doctor_id == doctor_id and start_from <= a.start < start_to,
            limit,
            cursor,
        )

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
        """Appointments of a country in a status with start in the window, by start."""
        low, high = window.start_from, window.start_to
        return self._page(
            lambda a: (
                a.country == country
                and a.status is status
                and (a.at_risk or not at_risk)
                and (low is None or a.start >= low)
                and (high is None or a.start < high)
            ),
            limit,
            cursor,
        )

    def _page(
        self,
        keep: Callable[[Appointment], bool],
        limit: int,
        cursor: Cursor,
    ) -> Page[Appointment]:
        after = parse_cursor(cursor) if cursor is not None else None
        with self._store.lock:
            # Only this clinic's keys: the memory twin of a GSI partition that starts with it.
            mine = (a for (c, _), a in self._store.appointments.items() if c == self._clinic)
            matches = sorted((a for a in mine if keep(a)), key=sort_key)
        if after is not None:
            matches = [a for a in matches if sort_key(a) > after]
        items = [a.copy() for a in matches[:limit]]
        more = len(matches) > limit
        last = items[-1] if items else None
        next_cursor = (
            {"start": last.start.isoformat(), "id": last.appointment_id}
            if more and last is not None
            else None
        )
        return Page(items, next_cursor)

    def record_cadence(self, previous: Appointment, current: Appointment) -> bool:
        """Store a cadence step once per start time, unless the appointment changed."""
        require_clinic(self._clinic, current.clinic_id, "an appointment")
        s = self._store
        with s.lock:
            stored = s.appointments.get((self._clinic, current.appointment_id))
            new = current.sent_steps - previous.sent_steps
            if (
                stored is None
                or stored.version != previous.version
                or not new
                or new <= stored.sent_steps
            ):
                return False
            s.appointments[self._clinic, current.appointment_id] = current.copy()
            self._keep(current.collect_new_events())
            return True


def parse_cursor(cursor: Mapping[str, Any]) -> tuple[datetime, str]:
    """The (start, id) a memory cursor points after, or InvalidCursor."""
    try:
        start = datetime.fromisoformat(cursor["start"])
        appointment_id = cursor["id"]
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidCursor(str(e)) from e
    if (
        start.tzinfo is None
        or not isinstance(appointment_id, str)
        or set(cursor)
        != {
            "start",
            "id",
        }
    ):
        raise InvalidCursor("unexpected cursor shape")
    return start, appointment_id


class InMemoryBookingRequestRepository:
    """One clinic's asynchronous booking requests in a `MemoryStore`."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        self._store = store
        self._clinic = clinic_id

    def add(self, request: BookingRequest) -> None:
        """Store a new request; the same request again is harmless, another one an error."""
        require_clinic(self._clinic, request.clinic_id, "a booking request")
        with self._store.lock:
            stored = self._store.requests.get((self._clinic, request.request_id))
            if stored is not None:
                if stored != request:
                    raise ValueError(f"booking request {request.request_id} already exists")
                return
            self._store.requests[self._clinic, request.request_id] = evolve(request, events=[])

    def get(self, request_id: str) -> BookingRequest | None:
        """A copy of the request, or None."""
        with self._store.lock:
            found = self._store.requests.get((self._clinic, request_id))
            return evolve(found, events=[]) if found is not None else None

    def save(self, request: BookingRequest) -> None:
        """Store the outcome and its events while the stored request is still pending."""
        require_clinic(self._clinic, request.clinic_id, "a booking request")
        with self._store.lock:
            stored = self._store.requests.get((self._clinic, request.request_id))
            if stored is None or stored.status is not RequestStatus.PENDING:
                return
            self._store.requests[self._clinic, request.request_id] = evolve(request, events=[])
            for event in request.collect_new_events():
                self._store.outbox[event.event_id] = event


class InMemoryEventOutbox:
    """The outbox part of a `MemoryStore`, oldest first."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def pending(self, limit: int) -> Sequence[Event]:
        """Up to `limit` unpublished events, in commit order."""
        with self._store.lock:
            return list(self._store.outbox.values())[:limit]

    def remove(self, event_ids: Sequence[str]) -> None:
        """Forget published events."""
        with self._store.lock:
            for event_id in event_ids:
                self._store.outbox.pop(event_id, None)


class InMemoryProcessedEvents:
    """Handled event keys in a `MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def seen(self, key: str) -> bool:
        """Whether `key` was handled."""
        with self._store.lock:
            return key in self._store.processed

    def remember(self, key: str) -> None:
        """Record `key` as handled."""
        with self._store.lock:
            self._store.processed.add(key)


class InMemoryRepositories:
    """The repositories of each clinic, over one shared `MemoryStore`."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def appointments(self, clinic_id: str) -> InMemoryAppointmentRepository:
        """The clinic's appointments."""
        return InMemoryAppointmentRepository(self.store, clinic_id=clinic_id)

    def doctors(self, clinic_id: str) -> InMemoryDoctorRepository:
        """The clinic's doctors."""
        # Imported here: the doctors' module builds on this one.
        from adapters.memory.doctors import InMemoryDoctorRepository

        return InMemoryDoctorRepository(self.store, clinic_id=clinic_id)

    def requests(self, clinic_id: str) -> InMemoryBookingRequestRepository:
        """The clinic's booking requests."""
        return InMemoryBookingRequestRepository(self.store, clinic_id=clinic_id)

    def contacts(self, clinic_id: str) -> InMemoryPatientContacts:
        """The clinic's patient contacts: opt-outs and awaited answers."""
        from adapters.memory.patients import InMemoryPatientContacts

        return InMemoryPatientContacts(self.store, clinic_id=clinic_id)

    def deferred(self, clinic_id: str) -> InMemoryDeferredMessages:
        """The clinic's messages held back by quiet hours."""
        from adapters.memory.patients import InMemoryDeferredMessages

        return InMemoryDeferredMessages(self.store, clinic_id=clinic_id)

    def waitlist(self, clinic_id: str) -> InMemoryWaitlistRepository:
        """The clinic's waitlist entries and their offers' holds."""
        from adapters.memory.waitlist import InMemoryWaitlistRepository

        return InMemoryWaitlistRepository(self.store, clinic_id=clinic_id)
