"""The patient's page behind a link: see the appointment, confirm, cancel or move it.

The token is the capability, so every action first proves it (signature, purpose, expiry) and
then runs the clinic's own use case with the same rules as the API: a patient cannot confirm
a cancelled appointment nor move into a taken slot. Every action is safe to repeat (a
reloaded form, a double tap): confirming a confirmed appointment, cancelling a cancelled one
or moving to the time it already has changes nothing. An action's answer is a notice code the
page shows, never an exception: the page always renders.

A waitlist offer's link (an OFFER token) opens the offer: Aceptar books the held slot as a
confirmed appointment and leads to that appointment's own page; Rechazar lets the slot go and
the entry waits again. A token acts only on the offer it was sent for (an earlier offer's link
never takes a later one); once the offer became an appointment, its link leads to that
appointment; once it ran out (or was let go), accepting it is refused (`OfferGone`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from attrs import frozen

from domain.appointment import Appointment, Status, require_aware
from domain.clinics import ClinicProfile
from domain.commands import CancelAppointment, ChangeStatus, RescheduleAppointment
from domain.errors import (
    CitasError,
    NotFound,
    OfferExpired,
    TemporarilyUnavailable,
    ValidationError,
)
from domain.links import InvalidLink, LinkClaims, LinkExpired, Purpose
from domain.schedule import Doctor, Slot
from domain.use_cases.clinic import Clinic
from domain.use_cases.links import Links, is_current_offer
from domain.waitlist import WaitlistEntry, WaitStatus
from ports.clinics import ClinicDirectory
from ports.system import Clock

# How many local days, from today, the reschedule form offers.
RESCHEDULE_DAYS = 7


class PageGone(Exception):
    """The link is genuine but its appointment has started (or gone): the link expired."""

    def __init__(self, clinic: ClinicProfile | None) -> None:
        super().__init__("the link has expired")
        self.clinic = clinic


class OfferGone(Exception):
    """The offer's link expired, or its hold ran out before the patient took it: nothing booked.

    `waiting`: the entry is still on the waitlist (the page says so).
    """

    def __init__(self, clinic: ClinicProfile | None, *, waiting: bool) -> None:
        super().__init__("the offer has expired")
        self.clinic = clinic
        self.waiting = waiting


@frozen
class OfferState:
    """What an offer's page shows.

    `live`: the link's offer is the entry's and still held (Aceptar / Rechazar); otherwise it
    ended. `expired`: the link itself has. `booked_token`: the offer became an appointment,
    whose page (this token) it leads to. `now`: when it was read (the page says "until 10:30"
    when that is today).
    """

    clinic: ClinicProfile
    entry: WaitlistEntry
    doctor: Doctor | None
    now: datetime
    live: bool
    waiting: bool
    expired: bool = False
    booked_token: str | None = None


@frozen
class OfferAction:
    """What an action on an offer came to: the notice, and the token of the page to go to."""

    notice: str
    token: str


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

    # --- waitlist offers -------------------------------------------------------------------

    def is_offer(self, token: str) -> bool:
        """Whether `token` is a genuine offer link (expired or not)."""
        try:
            return self._links.purpose(token, now=self._clock.now()) is Purpose.OFFER
        except InvalidLink:
            return False

    def open_offer(self, token: str) -> OfferState:
        """The offer's page; InvalidLink (a 404) or OfferGone (expired, nothing booked)."""
        state = self._offer_state(token)
        if state.booked_token is None and state.expired:
            raise OfferGone(state.clinic, waiting=state.waiting)
        return state

    def accept_offer(self, token: str) -> OfferAction:
        """Take the offer: the notice and the new appointment's token; OfferGone when too late."""
        state = self._offer_state(token)
        if state.booked_token is not None:
            return OfferAction("reservada", state.booked_token)  # a repeat: it is booked
        if not state.live:
            raise OfferGone(state.clinic, waiting=state.waiting)
        services = self._services(state.clinic.clinic_id)
        try:
            _, appointment = services.accept_offer(
                state.entry.waitlist_id, by_patient=True, offer_id=_offer_id(state.entry)
            )
        except OfferExpired:
            raise OfferGone(state.clinic, waiting=True) from None
        except TemporarilyUnavailable:
            raise  # the page says "try again", with 503
        except CitasError as e:
            return OfferAction(e.code, token)
        return OfferAction("reservada", self._links.token(appointment))

    def decline_offer(self, token: str) -> OfferAction:
        """Let the offer go (again, or once over: no change); the notice and the page's token."""
        state = self._offer_state(token)
        if state.booked_token is not None:
            return OfferAction("ya_reservada", state.booked_token)  # never undone from here
        if state.live:
            self._services(state.clinic.clinic_id).decline_offer(
                state.entry.waitlist_id, offer_id=_offer_id(state.entry)
            )
        return OfferAction("rechazada", token)

    def _offer_state(self, token: str) -> OfferState:
        now = self._clock.now()
        expired = False
        try:
            claims = self._links.claims(token, purpose=Purpose.OFFER, now=now)
        except LinkExpired as e:
            claims, expired = e.claims, True
        clinic = self._clinics.get(claims.clinic_id)
        if clinic is None:
            if expired:
                raise OfferGone(None, waiting=False)
            raise InvalidLink("a clinic this deployment does not serve")
        services = self._services(clinic.clinic_id)
        try:
            entry = services.waitlist_entry(claims.appointment_id)
        except NotFound:
            raise OfferGone(clinic, waiting=False) from None
        waiting = entry.shown_status(now) in (WaitStatus.WAITING, WaitStatus.OFFERED)
        doctor = services.doctors.get(entry.doctor_id)
        booked = self._booked_token(services, entry, now)
        live = (
            not expired
            and entry.status is WaitStatus.OFFERED
            and entry.offer is not None
            and entry.offer.is_live(now)
            and is_current_offer(claims, entry.offer)
        )
        return OfferState(clinic, entry, doctor, now, live, waiting, expired, booked)

    def _booked_token(self, services: Clinic, entry: WaitlistEntry, now: datetime) -> str | None:
        """The page of the appointment the entry's offer became, while it has not begun."""
        if entry.status is not WaitStatus.BOOKED or entry.appointment_id is None:
            return None
        try:
            appointment = services.get(entry.appointment_id)
        except NotFound:
            return None
        return self._links.token(appointment) if now < appointment.start else None

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


def _offer_id(entry: WaitlistEntry) -> str | None:
    """The offer a page shows: an accept or decline acts on that one only."""
    return entry.offer.appointment_id if entry.offer is not None else None
