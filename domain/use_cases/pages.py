"""The patient's page behind a link: see the appointment, confirm, cancel or move it.

The token is the capability, so every action first proves it (signature, purpose, expiry) and
then runs the clinic's own use case with the same rules as the API: a patient cannot confirm
a cancelled appointment nor move into a taken slot. Every action is safe to repeat (a
reloaded form, a double tap): confirming a confirmed appointment, cancelling a cancelled one
or moving to the time it already has changes nothing. An action's answer is a notice code the
page shows, never an exception: the page always renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from attrs import frozen

from domain.appointment import Appointment, Status, require_aware
from domain.clinics import ClinicProfile
from domain.commands import CancelAppointment, ChangeStatus, RescheduleAppointment
from domain.errors import CitasError, NotFound, TemporarilyUnavailable, ValidationError
from domain.links import InvalidLink, LinkClaims, LinkExpired, Purpose
from domain.schedule import Doctor, Slot
from domain.use_cases.clinic import Clinic
from domain.use_cases.links import Links
from ports.clinics import ClinicDirectory
from ports.system import Clock

# How many local days, from today, the reschedule form offers.
RESCHEDULE_DAYS = 7


class PageGone(Exception):
    """The link is genuine but its appointment has started (or gone): the link expired."""

    def __init__(self, clinic: ClinicProfile | None) -> None:
        super().__init__("the link has expired")
        self.clinic = clinic


@frozen
class PageState:
    """What the page shows: the clinic, the appointment, its doctor and the times to move to."""

    clinic: ClinicProfile
    appointment: Appointment
    doctor: Doctor | None
    days: Sequence[tuple[date, Sequence[datetime]]]

    @property
    def can_confirm(self) -> bool:
        """Only a requested appointment waits for the patient's yes."""
        return self.appointment.status is Status.REQUESTED

    @property
    def can_cancel(self) -> bool:
        """Any active appointment can be cancelled."""
        return self.appointment.is_active

    @property
    def can_reschedule(self) -> bool:
        """Any active appointment can move, to a time that is free."""
        return self.appointment.is_active


class PatientPages:
    """The use cases behind `/p/{token}`."""

    def __init__(
        self,
        clinics: ClinicDirectory,
        services: Callable[[str], Clinic],
        links: Links,
        clock: Clock,
    ) -> None:
        self._clinics = clinics
        self._services = services
        self._links = links
        self._clock = clock

    def open(self, token: str) -> PageState:
        """The page of a genuine link; InvalidLink (a 404) or PageGone (expired) otherwise."""
        clinic, appointment = self._resolve(token)
        services = self._services(clinic.clinic_id)
        doctor = services.doctors.get(appointment.doctor_id)
        days = self._free_days(services, appointment) if appointment.is_active else ()
        return PageState(clinic, appointment, doctor, days)

    def confirm(self, token: str) -> str:
        """Confirm the appointment; the notice to show."""
        clinic, appointment = self._resolve(token)
        if appointment.status is Status.CONFIRMED:
            return "ya_confirmada"

        def act() -> None:
            self._services(clinic.clinic_id).change_status(
                ChangeStatus(appointment.appointment_id, Status.CONFIRMED, by_patient=True)
            )

        return self._run(act, "confirmada")

    def cancel(self, token: str) -> str:
        """Cancel the appointment (again: no change); the notice to show."""
        clinic, appointment = self._resolve(token)

        def act() -> None:
            self._services(clinic.clinic_id).cancel(
                CancelAppointment(appointment.appointment_id, by_patient=True)
            )

        return self._run(act, "cancelada")

    def reschedule(self, token: str, start: str | None) -> tuple[str, str]:
        """Move the appointment to `start` (ISO 8601 with offset); the notice and the token.

        The token of a moved appointment is a new one: the link expires when the visit
        starts, and the visit now starts at another time.
        """
        clinic, appointment = self._resolve(token)
        try:
            if not start or len(start) > 40:
                raise ValueError("no time chosen")
            when = require_aware(datetime.fromisoformat(start), "start")
        except (ValueError, ValidationError):
            return "invalid_start", token
        if when == appointment.start and appointment.is_active:
            return "reprogramada", token  # a repeated form: it is already there
        moved: list[Appointment] = []

        def act() -> None:
            moved.append(
                self._services(clinic.clinic_id).reschedule(
                    RescheduleAppointment(appointment.appointment_id, when, by_patient=True)
                )
            )

        notice = self._run(act, "reprogramada")
        return notice, self._links.token(moved[0]) if moved else token

    def _run(self, act: Callable[[], None], success: str) -> str:
        try:
            act()
        except TemporarilyUnavailable:
            raise  # the page says "try again", with 503
        except CitasError as e:
            return e.code
        return success

    def _resolve(self, token: str) -> tuple[ClinicProfile, Appointment]:
        now = self._clock.now()
        try:
            claims = self._links.claims(token, purpose=Purpose.MANAGE, now=now)
        except LinkExpired as e:
            raise PageGone(self._clinics.get(e.claims.clinic_id)) from None
        clinic = self._clinics.get(claims.clinic_id)
        if clinic is None:
            raise InvalidLink("a clinic this deployment does not serve")
        appointment = self._appointment(clinic, claims)
        if appointment is None:
            raise PageGone(clinic)
        if now >= appointment.start:
            # Moved earlier since the link was signed: its visit has begun all the same.
            raise PageGone(clinic)
        return clinic, appointment

    def _appointment(self, clinic: ClinicProfile, claims: LinkClaims) -> Appointment | None:
        try:
            return self._services(clinic.clinic_id).get(claims.appointment_id)
        except NotFound:
            return None

    def _free_days(
        self, services: Clinic, appointment: Appointment
    ) -> list[tuple[date, list[datetime]]]:
        today = self._clock.now().astimezone(appointment.zone).date()
        days: list[tuple[date, list[datetime]]] = []
        for offset in range(RESCHEDULE_DAYS):
            day = today + timedelta(days=offset)
            try:
                free = services.availability(appointment.doctor_id, day)
            except NotFound:
                return []  # the doctor is gone: nothing to move to
            starts = _fitting(free.slots, appointment)
            if starts:
                days.append((day, starts))
        return days


def _fitting(slots: Sequence[Slot], appointment: Appointment) -> list[datetime]:
    """The starts from which a run of free slots holds the whole visit."""
    free = {slot.start: slot.end for slot in slots}
    length = appointment.end - appointment.start
    out = []
    for start in sorted(free):
        cursor = start
        while cursor in free and cursor - start < length:
            cursor = free[cursor]
        if cursor - start >= length and start != appointment.start:
            out.append(start)
    return out
