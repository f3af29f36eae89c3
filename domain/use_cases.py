"""Use cases: one method per command, the only domain module that talks to ports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from attrs import frozen

from domain import events as ev
from domain.appointment import (
    ACTIVE_STATUSES,
    REMINDER_GRACE,
    REMINDER_LEAD,
    Appointment,
    Status,
    require_aware,
)
from domain.booking_request import BookingRequest, RequestStatus
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    ListByCountryStatus,
    ListDoctorDay,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import (
    CitasError,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    InvalidCursor,
    NotFound,
    TemporarilyUnavailable,
    TimeZoneConflict,
    ValidationError,
    VersionConflict,
    ZoneChanged,
)
from domain.messages import message_for
from domain.pagination import PageTokens
from domain.schedule import MAX_DURATION_MINUTES, Doctor, Slot, WorkingHours, free_slots
from domain.text import matches, pattern
from ports.messaging import BookingRequestQueue, Notifier
from ports.repositories import (
    AppointmentRepository,
    BookingRequestRepository,
    DoctorRepository,
    IdempotencyRecord,
    Page,
    ProcessedEvents,
)
from ports.system import Clock, IdGenerator

MAX_PAGE = 100
_IDEMPOTENCY_KEY = pattern(r"[\x21-\x7e]{1,128}")
# The booking worker's keys (one per booking request) contain a space, which no client key
# may: a client can never name, take or poison a key of citas's own. Client keys are stored
# as sent, so keys in flight across an upgrade keep working.
_REQUEST_KEYS = "booking-request "
# Without If-Match, a change that lost a race is re-applied to the fresh state this often.
_RETRIES_ON_RACE = 5
# An appointment that started before the day may still run into it.
_LONGEST_VISIT = timedelta(minutes=MAX_DURATION_MINUTES)
# Past the last instant the API accepts (year 9000): "every appointment still to come".
_END_OF_TIME = datetime(9000, 1, 1, tzinfo=UTC)
# How many conflicting appointment ids an error names; `count` says how many there are.
_LISTED_CONFLICTS = 50


@frozen
class ListResult:
    """A page of appointments and the token of the next page."""

    items: list[Appointment]
    next_token: str | None


@frozen
class ProcessedRequest:
    """A booking request after a worker saw it, and whether that worker processed it."""

    request: BookingRequest
    processed_now: bool


@frozen
class Availability:
    """A doctor's free slots on one local date."""

    doctor: Doctor
    day: date
    slots: list[Slot]


def fingerprint(command: BookAppointment) -> str:
    """A digest of a booking request, equal for equal requests."""
    canonical = json.dumps(command.fingerprint_source(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit is 1-{MAX_PAGE}", field="limit")


class Clinic:
    """The application service: every use case of citas."""

    def __init__(
        self,
        appointments: AppointmentRepository,
        doctors: DoctorRepository,
        requests: BookingRequestRepository,
        request_queue: BookingRequestQueue,
        clock: Clock,
        ids: IdGenerator,
        countries: CountryCatalog,
        page_tokens: PageTokens | None = None,
    ) -> None:
        self.appointments = appointments
        self.doctors = doctors
        self.requests = requests
        self.request_queue = request_queue
        self.clock = clock
        self.ids = ids
        self.countries = countries
        # Every process of a deployment must share one key (bootstrap passes the configured
        # one); a random key is right only where one process answers every page.
        self.page_tokens = page_tokens if page_tokens is not None else PageTokens.ephemeral()

    def _now(self) -> datetime:
        # In UTC: aware arithmetic in a zone with DST adds wall time, not elapsed time.
        return require_aware(self.clock.now(), "now")

    # Doctors ---------------------------------------------------------------------------

    def register_doctor(self, command: RegisterDoctor) -> tuple[Doctor, bool]:
        """Create or replace a doctor; returns the doctor and whether it is new."""
        self.countries.require(command.country)
        doctor = Doctor(
            doctor_id=command.doctor_id,
            name=command.name,
            country=command.country,
            time_zone=command.time_zone or self.countries.default_zone(command.country),
            working_hours=WorkingHours.parse(command.working_hours),
            slot_minutes=command.slot_minutes,
        )
        try:
            # One write in the common case; only a real change of zone costs a look.
            return doctor, self.doctors.put(doctor, keep_zone=True)
        except ZoneChanged:
            self._check_zone_change(self.doctor(doctor.doctor_id), doctor.time_zone)
        return doctor, self.doctors.put(doctor)

    def _check_zone_change(self, doctor: Doctor, new_zone: str) -> None:
        """Refuse a new time zone while the doctor has active appointments still to end.

        Their times were chosen, listed and told to patients in the old zone; changing it
        would silently move every one of them to another wall time.
        """
        now = self._now()
        pending = [
            a.appointment_id
            for a in self._all_pages(
                lambda cursor: self.appointments.list_by_doctor(
                    doctor.doctor_id, now - _LONGEST_VISIT, _END_OF_TIME, MAX_PAGE, cursor
                )
            )
            if a.is_active and a.end > now
        ]
        if pending:
            raise TimeZoneConflict(
                f"the doctor has {len(pending)} active appointments set in {doctor.time_zone}; "
                "cancel or complete them before changing the time zone",
                time_zone=doctor.time_zone,
                requested=new_zone,
                appointment_ids=pending[:_LISTED_CONFLICTS],
                count=len(pending),
            )

    def doctor(self, doctor_id: str) -> Doctor:
        """The doctor, or NotFound."""
        found = self.doctors.get(doctor_id)
        if found is None:
            raise NotFound(f"doctor {doctor_id!r} does not exist", doctor_id=doctor_id)
        return found

    def availability(self, doctor_id: str, day: date) -> Availability:
        """The free slots of a doctor on a local date, in order."""
        doctor = self.doctor(doctor_id)
        start, end = doctor.day_bounds(day)
        busy = [
            (a.start, a.end)
            for a in self._all_pages(
                lambda cursor: self.appointments.list_by_doctor(
                    doctor_id, start - _LONGEST_VISIT, end, MAX_PAGE, cursor
                )
            )
            if a.is_active
        ]
        return Availability(doctor, day, free_slots(doctor, day, self._now(), busy))

    # Booking ---------------------------------------------------------------------------

    def book(self, command: BookAppointment, idempotency_key: str | None = None) -> Appointment:
        """Book an appointment; a repeated idempotency key returns the first result."""
        if idempotency_key is None:
            return self._book(command, None)
        if not matches(_IDEMPOTENCY_KEY, idempotency_key):
            raise ValidationError(
                "Idempotency-Key is 1-128 visible ASCII characters", field="Idempotency-Key"
            )
        return self._book(command, idempotency_key)

    def _book(self, command: BookAppointment, stored_key: str | None) -> Appointment:
        """Book under `stored_key`: a client's checked key, or one of citas's own."""
        record = None
        if stored_key is not None:
            digest = fingerprint(command)
            seen = self.appointments.get_idempotency(stored_key)
            if seen is not None:
                return self._replay(seen, digest)
        doctor = self.doctor(command.doctor_id)
        now = self._now()
        minutes = command.duration_minutes
        appointment = Appointment.request(
            appointment_id=self.ids.new_id(),
            doctor=doctor,
            patient=command.patient,
            start=command.start,
            duration_minutes=doctor.slot_minutes if minutes is None else minutes,
            notes=command.notes,
            now=now,
            event_id=self.ids.new_id(),
        )
        if stored_key is not None:
            record = IdempotencyRecord(stored_key, digest, appointment.appointment_id)
        try:
            self.appointments.add(appointment, record)
        except IdempotencyKeyTaken:
            # A concurrent twin with the same key won; answer as it did.
            seen = self.appointments.get_idempotency(stored_key or "")
            if seen is None:
                raise
            return self._replay(seen, digest)
        appointment.events.clear()
        return appointment

    def _replay(self, record: IdempotencyRecord, digest: str) -> Appointment:
        if record.fingerprint != digest:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request", key=record.key
            )
        return self.get(record.appointment_id)

    def get(self, appointment_id: str) -> Appointment:
        """The appointment, or NotFound."""
        found = self.appointments.get(appointment_id)
        if found is None:
            raise NotFound(
                f"appointment {appointment_id!r} does not exist", appointment_id=appointment_id
            )
        return found

    def reschedule(self, command: RescheduleAppointment) -> Appointment:
        """Move an appointment: the new time is taken and the old one freed in one step."""
        start = require_aware(command.start, "start")

        def change(appointment: Appointment) -> None:
            appointment.reschedule(
                doctor=self.doctor(appointment.doctor_id),
                start=start,
                duration_minutes=command.duration_minutes,
                now=self._now(),
                event_id=self.ids.new_id(),
            )

        return self._modify(command.appointment_id, command.expected_version, change)

    def change_status(self, command: ChangeStatus) -> Appointment:
        """Apply a status change the status machine allows."""

        def change(appointment: Appointment) -> None:
            appointment.transition(
                command.status,
                now=self._now(),
                event_id=self.ids.new_id(),
                reason=command.reason,
            )

        return self._modify(command.appointment_id, command.expected_version, change)

    def cancel(self, command: CancelAppointment) -> Appointment:
        """Cancel and free the time; an already cancelled appointment is returned as is."""

        def change(appointment: Appointment) -> bool:
            # Checked on every attempt: a cancel that lost a race to another cancel must
            # answer like a repeated DELETE, not with invalid_transition.
            if appointment.status is Status.CANCELLED:
                return False
            appointment.transition(
                Status.CANCELLED,
                now=self._now(),
                event_id=self.ids.new_id(),
                reason=command.reason,
            )
            return True

        return self._modify(command.appointment_id, command.expected_version, change)

    def _modify(
        self,
        appointment_id: str,
        expected_version: int | None,
        change: Callable[[Appointment], bool | None],
    ) -> Appointment:
        """Apply `change` to the stored appointment; `change` returns False for a no-op."""
        for attempt in range(_RETRIES_ON_RACE):
            current = self.get(appointment_id)
            if expected_version is not None and current.version != expected_version:
                raise _version_conflict(expected_version, current.version)
            previous = current.copy()
            if change(current) is False:
                return current
            try:
                self.appointments.update(previous, current)
            except VersionConflict:
                # With If-Match the caller asked to fail; without it, re-read and re-apply.
                if expected_version is not None or attempt == _RETRIES_ON_RACE - 1:
                    raise
                continue
            current.events.clear()
            return current
        raise AssertionError("unreachable")  # pragma: no cover

    # Lists -----------------------------------------------------------------------------

    def list_doctor_day(self, command: ListDoctorDay) -> ListResult:
        """A doctor's appointments of one local date, by start time."""
        _check_limit(command.limit)
        doctor = self.doctor(command.doctor_id)
        start, end = doctor.day_bounds(command.day)
        query = {"doctor_id": command.doctor_id, "date": command.day.isoformat()}
        return self._page(
            query,
            command.next_token,
            lambda cursor: self.appointments.list_by_doctor(
                command.doctor_id, start, end, command.limit, cursor
            ),
        )

    def list_by_country_status(self, command: ListByCountryStatus) -> ListResult:
        """Appointments of a country in a status, optionally within [from, to), by start."""
        _check_limit(command.limit)
        self.countries.require(command.country)
        start_from = (
            require_aware(command.start_from, "from") if command.start_from is not None else None
        )
        start_to = require_aware(command.start_to, "to") if command.start_to is not None else None
        if start_from is not None and start_to is not None and start_to < start_from:
            raise ValidationError("to must not be before from", field="to")
        query = {
            "country": command.country,
            "status": str(command.status),
            "from": start_from.isoformat() if start_from else None,
            "to": start_to.isoformat() if start_to else None,
        }
        return self._page(
            query,
            command.next_token,
            lambda cursor: self.appointments.list_by_country_status(
                command.country, command.status, start_from, start_to, command.limit, cursor
            ),
        )

    def _page(
        self,
        query: Mapping[str, Any],
        token: str | None,
        fetch: Callable[[Mapping[str, Any] | None], Page],
    ) -> ListResult:
        cursor = self.page_tokens.decode(token, query) if token is not None else None
        try:
            page = fetch(cursor)
        except InvalidCursor as e:
            raise ValidationError("next_token is not valid", field="next_token") from e
        after = page.cursor
        next_token = self.page_tokens.encode(query, after) if after is not None else None
        return ListResult(list(page.items), next_token)

    @staticmethod
    def _all_pages(fetch: Callable[[Mapping[str, Any] | None], Page]) -> Iterator[Appointment]:
        cursor: Mapping[str, Any] | None = None
        while True:
            page = fetch(cursor)
            yield from page.items
            if page.cursor is None:
                return
            cursor = page.cursor

    # Asynchronous booking requests -----------------------------------------------------

    def request_booking(self, command: BookAppointment) -> BookingRequest:
        """Accept a booking for the doctor's country worker; it is booked later, in order."""
        require_aware(command.start, "start")
        doctor = self.doctor(command.doctor_id)
        now = self._now()
        request = BookingRequest(
            request_id=self.ids.new_id(),
            country=doctor.country,
            command=command,
            created_at=now,
            updated_at=now,
        )
        # Queued first, then stored: the message carries the whole request, so a request
        # that could not be queued is never stored (TemporarilyUnavailable: 503, nothing
        # pending), and one queued but not stored (503 too) is stored by the worker.
        self.request_queue.enqueue(request)
        self._store_new_request(request)
        return request

    def _store_new_request(self, request: BookingRequest) -> None:
        try:
            self.requests.add(request)
        except ValueError:
            # The id is taken: the worker stored (and maybe booked) the queued copy first.
            if self.requests.get(request.request_id) is None:
                raise

    def booking_request(self, request_id: str) -> BookingRequest:
        """A booking request, or NotFound."""
        found = self.requests.get(request_id)
        if found is None:
            raise NotFound(f"booking request {request_id!r} does not exist", request_id=request_id)
        return found

    def process_booking_request(
        self, request_id: str, queued: BookingRequest | None = None
    ) -> BookingRequest:
        """Book a queued request; safe to run twice for the same request.

        `queued` is the copy the message carried: a request queued but never stored (the
        store failed after the enqueue) is stored from it first. Without it, NotFound.
        """
        return self.handle_booking_request(request_id, queued).request

    def handle_booking_request(
        self,
        request_id: str,
        queued: BookingRequest | None = None,
        *,
        country: str | None = None,
    ) -> ProcessedRequest:
        """Book a queued request once, and say whether this call processed it.

        With `country` (a country's worker), a request of another country is a
        ValidationError: that worker must never book it. A request no longer pending is
        returned as it is, with `processed_now` False.
        """
        if queued is not None and queued.request_id != request_id:
            raise ValidationError("the queued request has another id", field="request_id")
        request = self.requests.get(request_id)
        found = request if request is not None else queued
        if found is None:
            raise NotFound(f"booking request {request_id!r} does not exist", request_id=request_id)
        if country is not None and found.country != country:
            raise ValidationError(
                "the request belongs to another country's worker", field="country"
            )
        if request is None:
            request = self._store_queued(found)
        if request.status is not RequestStatus.PENDING:
            return ProcessedRequest(request, processed_now=False)
        try:
            # The request id as idempotency key: a worker that crashed after booking and
            # runs again finds the booking instead of making a second one.
            appointment = self._book(request.command, _REQUEST_KEYS + request_id)
        except TemporarilyUnavailable:
            raise
        except CitasError as e:
            request.rejected(e, self._now(), self.ids.new_id())
        else:
            request.booked(appointment.appointment_id, self._now())
        self.requests.save(request)
        request.events.clear()
        return ProcessedRequest(request, processed_now=True)

    def _store_queued(self, queued: BookingRequest) -> BookingRequest:
        """Store a request queued but never stored (its store failed after the enqueue)."""
        self._store_new_request(
            BookingRequest(
                request_id=queued.request_id,
                country=queued.country,
                command=queued.command,
                created_at=queued.created_at,
                updated_at=queued.created_at,
            )
        )
        return self.booking_request(queued.request_id)

    # Reminders -------------------------------------------------------------------------

    def due_reminders(self) -> list[Appointment]:
        """Active appointments whose 24-hour mark has passed and that were not reminded."""
        now = self._now()
        start_from = now + REMINDER_LEAD - REMINDER_GRACE
        start_to = now + REMINDER_LEAD + timedelta(seconds=1)
        due: list[Appointment] = []
        for country in self.countries:
            for status in sorted(ACTIVE_STATUSES):

                def fetch(
                    cursor: Mapping[str, Any] | None, c: str = country, s: Status = status
                ) -> Page:
                    return self.appointments.list_by_country_status(
                        c, s, start_from, start_to, MAX_PAGE, cursor
                    )

                due.extend(a for a in self._all_pages(fetch) if a.is_reminder_due(now))
        return due

    def send_reminders(self) -> list[Appointment]:
        """Record `ReminderDue` once for each due appointment; returns those reminded now."""
        reminded = []
        for appointment in self.due_reminders():
            previous = appointment.copy()
            appointment.remind(now=self._now(), event_id=self.ids.new_id())
            if self.appointments.record_reminder(previous, appointment):
                reminded.append(appointment)
            appointment.events.clear()
        return reminded


def _version_conflict(expected: int, actual: int) -> VersionConflict:
    return VersionConflict(
        f"expected version {expected}, the appointment is at version {actual}",
        expected=expected,
        actual=actual,
    )


class PatientMessenger:
    """Tells patients, in Spanish and their clinic's time, what happened to their visit."""

    def __init__(
        self,
        appointments: AppointmentRepository,
        doctors: DoctorRepository,
        notifier: Notifier,
        processed: ProcessedEvents,
    ) -> None:
        self.appointments = appointments
        self.doctors = doctors
        self.notifier = notifier
        self.processed = processed

    def handle(self, event: ev.Event) -> bool:
        """Send the message for `event` once; False if it was handled before or says nothing."""
        key = f"notify:{event.event_id}"
        if event.appointment_id is None or self.processed.seen(key):
            return False
        appointment = self.appointments.get(event.appointment_id)
        if appointment is None or not self._still_true(event, appointment):
            self.processed.remember(key)
            return False
        doctor = self.doctors.get(appointment.doctor_id)
        text = message_for(
            event,
            doctor_name=doctor.name if doctor is not None else "tu médico",
            time_zone=appointment.time_zone,
        )
        if text is not None:
            # Sent before it is remembered: a crash in between sends twice, never zero times.
            self.notifier.send(
                appointment.patient.phone, text, appointment_id=appointment.appointment_id
            )
        self.processed.remember(key)
        return text is not None

    @staticmethod
    def _still_true(event: ev.Event, appointment: Appointment) -> bool:
        # Events can arrive late or out of order (at-least-once delivery, one stream shard per
        # outbox item), so a message goes out only while what it says still holds: no "we got
        # your booking" after a cancellation, no reminder or old time after a reschedule.
        if isinstance(event, ev.AppointmentCancelled):
            return True
        return appointment.is_active and _iso_equal(event.data["start"], appointment.start)


def _iso_equal(text: str, instant: datetime) -> bool:
    return datetime.fromisoformat(text) == instant
