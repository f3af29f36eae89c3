"""Booking and changing appointments: book (idempotently), reschedule, change status, cancel."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from domain.appointment import Appointment, Status, require_aware
from domain.commands import BookAppointment, CancelAppointment, ChangeStatus, RescheduleAppointment
from domain.errors import (
    CitasError,
    IdempotencyKeyReused,
    IdempotencyKeyTaken,
    NotFound,
    ValidationError,
    VersionConflict,
)
from domain.rules import Rules
from domain.text import matches, pattern
from domain.use_cases.context import Ports
from domain.use_cases.doctors import DoctorUseCases
from ports.repositories import IdempotencyRecord

_IDEMPOTENCY_KEY = pattern(r"[\x21-\x7e]{1,128}")
# Without If-Match, a change that lost a race is re-applied to the fresh state this often.
_RETRIES_ON_RACE = 5


def fingerprint(command: BookAppointment) -> str:
    """A digest of a booking request, equal for equal requests."""
    canonical = json.dumps(command.fingerprint_source(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class BookingUseCases:
    """Book appointments and change them, never letting a doctor or a patient overlap."""

    def __init__(self, ports: Ports, doctors: DoctorUseCases) -> None:
        self._ports = ports
        self._doctors = doctors

    def book(self, command: BookAppointment, idempotency_key: str | None = None) -> Appointment:
        """Book an appointment; a repeated idempotency key returns the first result."""
        if idempotency_key is None:
            return self.book_under(command, None)
        if not matches(_IDEMPOTENCY_KEY, idempotency_key):
            raise ValidationError(
                "Idempotency-Key is 1-128 visible ASCII characters", field="Idempotency-Key"
            )
        return self.book_under(command, idempotency_key)

    def book_under(self, command: BookAppointment, stored_key: str | None) -> Appointment:
        """Book under `stored_key`: a client's checked key, or one of citas's own."""
        appointments = self._ports.appointments
        # No read of the key first: a booking is one write. A key seen before makes that
        # write fail (IdempotencyKeyTaken, or a rule the first booking now breaks), and only
        # then is the stored answer read.
        digest = fingerprint(command) if stored_key is not None else ""
        ids = self._ports.ids

        def write(rules: Rules) -> Appointment:
            minutes = command.duration_minutes
            appointment = Appointment.request(
                appointment_id=ids.new_id(),
                rules=rules,
                patient=command.patient,
                start=command.start,
                duration_minutes=rules.doctor.slot_minutes if minutes is None else minutes,
                notes=command.notes,
                event_id=ids.new_id(),
            )
            record = None
            if stored_key is not None:
                record = IdempotencyRecord(stored_key, digest, appointment.appointment_id)
            appointments.add(appointment, record, rules.schedule)
            return appointment

        try:
            return self._doctors.with_schedule(command.doctor_id, write)
        except (IdempotencyKeyTaken, CitasError):
            # A twin with the same key booked first (concurrently, or this is a retry of a
            # request that succeeded), or such a retry now breaks a rule (its slot is taken by
            # itself, or no longer far enough ahead): the first answer stands.
            seen = appointments.get_idempotency(stored_key) if stored_key is not None else None
            if seen is None:
                raise
            return self._replay(seen, digest)

    def _replay(self, record: IdempotencyRecord, digest: str) -> Appointment:
        if record.fingerprint != digest:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with a different request", key=record.key
            )
        return self.get(record.appointment_id)

    def get(self, appointment_id: str) -> Appointment:
        """The appointment, or NotFound."""
        found = self._ports.appointments.get(appointment_id)
        if found is None:
            raise NotFound(
                f"appointment {appointment_id!r} does not exist", appointment_id=appointment_id
            )
        return found

    def reschedule(self, command: RescheduleAppointment) -> Appointment:
        """Move an appointment: the new time is taken and the old one freed in one step."""
        start = require_aware(command.start, "start")
        for attempt in range(_RETRIES_ON_RACE):
            current = self.get(command.appointment_id)
            expected = command.expected_version
            if expected is not None and current.version != expected:
                raise _version_conflict(expected, current.version)

            def write(rules: Rules, previous: Appointment = current) -> Appointment:
                # A fresh copy per attempt: a retry on a newer schedule starts over.
                moved = previous.copy()
                moved.reschedule(
                    rules=rules,
                    start=start,
                    duration_minutes=command.duration_minutes,
                    event_id=self._ports.ids.new_id(),
                    by_patient=command.by_patient,
                )
                self._ports.appointments.update(previous, moved, rules.schedule)
                return moved

            try:
                return self._doctors.with_schedule(current.doctor_id, write)
            except VersionConflict:
                # With If-Match the caller asked to fail; without it, re-read and re-apply.
                if expected is not None or attempt == _RETRIES_ON_RACE - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def change_status(self, command: ChangeStatus) -> Appointment:
        """Apply a status change the status machine allows."""

        def change(appointment: Appointment) -> None:
            appointment.transition(
                command.status,
                now=self._ports.now(),
                event_id=self._ports.ids.new_id(),
                reason=command.reason,
                by_patient=command.by_patient,
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
                now=self._ports.now(),
                event_id=self._ports.ids.new_id(),
                reason=command.reason,
                by_patient=command.by_patient,
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
                self._ports.appointments.update(previous, current)
            except VersionConflict:
                # With If-Match the caller asked to fail; without it, re-read and re-apply.
                if expected_version is not None or attempt == _RETRIES_ON_RACE - 1:
                    raise
                continue
            return current
        raise AssertionError("unreachable")  # pragma: no cover


def _version_conflict(expected: int, actual: int) -> VersionConflict:
    return VersionConflict(
        f"expected version {expected}, the appointment is at version {actual}",
        expected=expected,
        actual=actual,
    )
