"""The waitlist: join, list, withdraw; offers of freed time, accepted, declined or run out.

Freed time reaches the waitlist as events (a cancellation, a reschedule away, time off
removed, an offer that ended): `refill_after` reads the span from the event and `refill`
offers it, oldest waiting entry first, one offer per entry, each offer one conditional write
that holds the doctor's cells. Nothing here decides who may have a slot by reading: the
writes' conditions do, so concurrent refills, bookings and accepts can only lose, never
double-book.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from domain import events as ev
from domain.appointment import Appointment, Status
from domain.cadence import send_time
from domain.commands import JoinWaitlist, ListWaitlist
from domain.errors import (
    NotFound,
    OfferExpired,
    PatientDoubleBooked,
    ScheduleChanged,
    SlotUnavailable,
    TemporarilyUnavailable,
    VersionConflict,
)
from domain.pagination import MAX_PAGE
from domain.rules import Rules
from domain.schedule import Doctor
from domain.use_cases.context import ListResult, Ports, all_pages, check_limit, signed_page
from domain.use_cases.doctors import DoctorUseCases
from domain.waitlist import Offer, Release, WaitlistEntry, WaitStatus, hold_until
from ports.repositories import WaitlistRepository

# Attempts of a change to an entry that another change (an accept, a sweep) overtook.
_ATTEMPTS = 5
# The least time a patient gets to answer an offer, once its message goes (or the whole hold,
# if a clinic holds for less): a slot that would be held for less is left free to book.
MIN_ANSWER = timedelta(minutes=10)


class _Try(enum.Enum):
    """Why a start was not held for an entry."""

    SKIP = "skip"  # refused by the rules, held or booked, or the patient is busy then
    STALE = "stale"  # judged on a schedule the doctor has left
    LOST = "lost"  # the entry changed: offered by another refill, or withdrawn


class WaitlistUseCases:
    """One clinic's waitlist: entries, and the offers that hand freed time over."""

    def __init__(self, ports: Ports, doctors: DoctorUseCases, hold_minutes: int) -> None:
        self._ports = ports
        self._doctors = doctors
        self._hold_minutes = hold_minutes

    @property
    def _waitlist(self) -> WaitlistRepository:
        found = self._ports.waitlist
        if found is None:
            raise RuntimeError("this clinic was built without waitlist storage")
        return found

    # --- entries ---------------------------------------------------------------------------

    def join(self, command: JoinWaitlist) -> WaitlistEntry:
        """Put a patient on a doctor's waitlist; the doctor must be this clinic's."""
        doctor = self._doctors.doctor(command.doctor_id)
        entry = WaitlistEntry.join(
            waitlist_id=self._ports.ids.new_id(),
            doctor=doctor,
            patient=command.patient,
            from_day=command.from_day,
            to_day=command.to_day,
            earliest=command.earliest,
            latest=command.latest,
            duration_minutes=command.duration_minutes,
            now=self._ports.now(),
        )
        self._waitlist.add(entry)
        return entry

    def entry(self, waitlist_id: str) -> WaitlistEntry:
        """The entry, or NotFound."""
        found = self._waitlist.get(waitlist_id)
        if found is None:
            raise NotFound(
                f"waitlist entry {waitlist_id!r} does not exist", waitlist_id=waitlist_id
            )
        return found

    def list_waitlist(self, command: ListWaitlist) -> tuple[Doctor, ListResult[WaitlistEntry]]:
        """A doctor's entries, oldest first; one page."""
        check_limit(command.limit)
        doctor = self._doctors.doctor(command.doctor_id)
        query = {
            "clinic_id": self._ports.clinic_id,
            "doctor_id": command.doctor_id,
            "waitlist": True,
        }
        page = signed_page(
            self._ports.page_tokens,
            query,
            command.next_token,
            lambda cursor: self._waitlist.list_by_doctor(command.doctor_id, command.limit, cursor),
        )
        return doctor, page

    def withdraw(self, waitlist_id: str) -> WaitlistEntry:
        """Take an entry off the waitlist (its held slot, if any, is freed); repeatable."""
        for attempt in range(_ATTEMPTS):
            entry = self.entry(waitlist_id)
            previous = entry.copy()
            if entry.status is WaitStatus.WITHDRAWN:
                return entry
            try:
                offer = entry.withdraw(now=self._ports.now(), event_id=self._ports.ids.new_id())
                if offer is not None:
                    self._waitlist.release(previous, entry, offer)
                else:
                    self._waitlist.save(previous, entry)
            except VersionConflict:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            return entry
        raise AssertionError("unreachable")  # pragma: no cover

    # --- offers ----------------------------------------------------------------------------

    def accept(
        self, waitlist_id: str, *, by_patient: bool = False, offer_id: str | None = None
    ) -> tuple[WaitlistEntry, Appointment]:
        """Take the entry's offer: its appointment is booked `confirmed`, in one write.

        OfferExpired once the hold has run out; repeating an accept that worked returns it.
        `offer_id` (the offer's appointment id, from a link or a button): only that offer;
        a later offer of the same entry is not what the patient said yes to.
        """
        for attempt in range(_ATTEMPTS):
            entry = self.entry(waitlist_id)
            if entry.status is WaitStatus.BOOKED and entry.appointment_id is not None:
                if offer_id is not None and entry.appointment_id != offer_id:
                    raise OfferExpired("that offer ended; the entry was booked another time")
                return entry, self._appointment(entry.appointment_id)
            if offer_id is not None and (
                entry.offer is None or entry.offer.appointment_id != offer_id
            ):
                raise OfferExpired("that offer ended; the slot went back to the waitlist")
            write = self._booking(entry, by_patient=by_patient)
            try:
                return self._doctors.with_schedule(entry.doctor_id, write)
            except VersionConflict:
                # A sweep, a decline or a twin accept got there first: see what it left.
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _booking(
        self, previous: WaitlistEntry, *, by_patient: bool
    ) -> Callable[[Rules], tuple[WaitlistEntry, Appointment]]:
        """The write that books the offer of `previous`, judged by the rules it is given."""

        def write(rules: Rules) -> tuple[WaitlistEntry, Appointment]:
            # A fresh copy per attempt, judged at the attempt's own instant: a retry after a
            # schedule change must not take an offer that ran out meanwhile.
            taken = previous.copy()
            # Refused (run out, nothing to accept) before anything is built.
            held = taken.offer_to_accept(rules.now)
            appointment = Appointment.request(
                appointment_id=held.appointment_id,
                rules=rules,
                patient=taken.patient,
                start=held.start,
                duration_minutes=taken.duration_minutes,
                notes=None,
                event_id=self._ports.ids.new_id(),
            )
            # Booked already confirmed: the patient said yes to this very time.
            appointment.transition(
                Status.CONFIRMED,
                now=rules.now,
                event_id=self._ports.ids.new_id(),
                by_patient=by_patient,
            )
            # The entry's event after the appointment's: every backend lists them in the order
            # their ids were minted, and the booking comes before the entry that says so.
            taken.accept(now=rules.now, event_id=self._ports.ids.new_id())
            self._waitlist.accept(previous, taken, appointment, rules.schedule)
            return taken, appointment

        return write

    def decline(self, waitlist_id: str, *, offer_id: str | None = None) -> WaitlistEntry:
        """Let the entry's offer go (the entry waits again); repeating it is harmless.

        `offer_id`: only that offer (a later one of the same entry stays held).
        """
        return self._release(waitlist_id, Release.DECLINED, offer_id)

    def sweep(self) -> list[WaitlistEntry]:
        """End every offer whose hold has run out; each frees its slot for the next entry."""
        now = self._ports.now()
        ended = []
        failed: Exception | None = None
        for entry in self._waitlist.offered():
            if entry.offer is None or entry.offer.is_live(now):
                continue
            try:
                released = self._release(entry.waitlist_id, Release.EXPIRED)
            except (TemporarilyUnavailable, VersionConflict) as e:
                # One entry in contention must not keep every other hold for another minute.
                failed = failed or e
                continue
            if released.offer is None and released.status is WaitStatus.WAITING:
                ended.append(released)
        if failed is not None:
            raise failed  # the run is reported failed; the next one retries what is left
        return ended

    def _release(
        self, waitlist_id: str, reason: Release, offer_id: str | None = None
    ) -> WaitlistEntry:
        for attempt in range(_ATTEMPTS):
            entry = self.entry(waitlist_id)
            now = self._ports.now()
            if entry.status is not WaitStatus.OFFERED or entry.offer is None:
                return entry  # already ended, accepted or withdrawn: nothing to let go
            if offer_id is not None and entry.offer.appointment_id != offer_id:
                return entry  # that offer ended; this one is another's answer to give
            if reason is Release.EXPIRED and entry.offer.is_live(now):
                return entry
            previous = entry.copy()
            offer = entry.release(reason, now=now, event_id=self._ports.ids.new_id())
            try:
                self._waitlist.release(previous, entry, offer)
            except VersionConflict:
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            return entry
        raise AssertionError("unreachable")  # pragma: no cover

    # --- freed time ------------------------------------------------------------------------

    def refill_after(self, event: ev.Event) -> list[WaitlistEntry]:
        """Offer the time an event freed (cancelled, moved away, time off removed, offer ended)."""
        span = self._freed(event)
        if span is None:
            return []
        return self.refill(*span)

    def _freed(self, event: ev.Event) -> tuple[str, datetime, datetime] | None:
        data = event.data
        if isinstance(event, ev.TimeOffRemoved | ev.WaitlistOfferExpired):
            return str(data["doctor_id"]), _instant(data["start"]), _instant(data["end"])
        if not isinstance(event, ev.AppointmentCancelled | ev.AppointmentRescheduled):
            return None
        if event.appointment_id is None:
            return None
        found = self._ports.appointments.get(event.appointment_id)
        if found is None:
            return None
        if isinstance(event, ev.AppointmentRescheduled):
            return found.doctor_id, _instant(data["previous_start"]), _instant(data["previous_end"])
        return found.doctor_id, _instant(data["start"]), _instant(data["end"])

    def refill(self, doctor_id: str, start: datetime, end: datetime) -> list[WaitlistEntry]:
        """Offer the doctor's free time that overlaps [start, end) to waiting entries, oldest first.

        Each entry gets at most one offer: the earliest start it fits, the rules allow and
        nobody holds (the write's conditions decide). Returns the entries offered now.
        """
        try:
            rules = self._doctors.rules(self._doctors.schedule(doctor_id, fresh=True))
        except NotFound:
            return []  # the doctor is gone: nothing to offer
        now = rules.now
        if end <= now:
            return []
        offered: list[WaitlistEntry] = []
        taken: list[tuple[datetime, datetime]] = []
        waiting = all_pages(
            lambda cursor: self._waitlist.list_by_doctor(doctor_id, MAX_PAGE, cursor, waiting=True)
        )
        for entry in waiting:
            if not entry.is_waiting(now):
                continue
            made, rules = self._offer_first(entry, rules, start, end, taken)
            if made is not None and made.offer is not None:
                offered.append(made)
                taken.append((made.offer.start, made.offer.end))
        return offered

    def _opted_out(self, entry: WaitlistEntry) -> bool:
        """Whether the entry's phone opted out of the clinic's messages."""
        # It would never hear of an offer: the slot would sit held for nobody.
        contacts = self._ports.contacts
        if contacts is None:
            return False
        contact = contacts.get(entry.patient.key)
        return contact is not None and contact.opted_out

    def _offer_first(
        self,
        entry: WaitlistEntry,
        rules: Rules,
        start: datetime,
        end: datetime,
        taken: list[tuple[datetime, datetime]],
    ) -> tuple[WaitlistEntry | None, Rules]:
        """Offer the entry the first start that works; the entry offered (or None), the rules."""
        length = timedelta(minutes=entry.duration_minutes)
        checked = False
        for at in self._candidates(rules.doctor, entry, start, end):
            if any(at < e and s < at + length for s, e in taken):
                continue
            # Read only for an entry the time may fit: a long waitlist costs no read per entry.
            if not checked and self._opted_out(entry):
                return None, rules
            checked = True
            outcome = self._hold(entry, rules, at)
            if outcome is _Try.STALE:
                # The doctor changed meanwhile: judge this start again on the fresh schedule.
                rules = self._doctors.rules(self._doctors.schedule(entry.doctor_id, fresh=True))
                outcome = self._hold(entry, rules, at)
            if outcome is _Try.LOST:
                return None, rules  # another refill offered it, or it was withdrawn
            if isinstance(outcome, WaitlistEntry):
                return outcome, rules
        return None, rules

    def _hold(self, entry: WaitlistEntry, rules: Rules, at: datetime) -> WaitlistEntry | _Try:
        """Offer `at` to the entry: the entry offered, or why not."""
        if rules.refusal(at, entry.duration_minutes) is not None:
            return _Try.SKIP
        # The hold runs from when its message may go (08:00 after a night), not from now.
        told = send_time(rules.now, at, entry.time_zone)
        expires = hold_until(told, at, self._hold_minutes, rules.doctor.min_notice_minutes)
        if expires - told < min(timedelta(minutes=self._hold_minutes), MIN_ANSWER):
            return _Try.SKIP  # no time left to answer: held for nobody, it is better free
        current = entry.copy()
        length = timedelta(minutes=entry.duration_minutes)
        offer = Offer(self._ports.ids.new_id(), at, at + length, expires, rules.now)
        current.make_offer(offer, event_id=self._ports.ids.new_id())
        try:
            self._waitlist.offer(entry, current, rules.schedule)
        except (SlotUnavailable, PatientDoubleBooked):
            return _Try.SKIP  # held or booked by someone, or the patient is busy then
        except ScheduleChanged:
            return _Try.STALE
        except VersionConflict:
            return _Try.LOST
        return current

    def _candidates(
        self, doctor: Doctor, entry: WaitlistEntry, start: datetime, end: datetime
    ) -> Iterator[datetime]:
        """The doctor's slot starts whose visit of the entry's length overlaps [start, end)."""
        length = timedelta(minutes=entry.duration_minutes)
        first = doctor.local(start - length).date()
        last = doctor.local(end).date()
        day = first
        while day <= last:
            for slot in doctor.slots_on(day):
                at = slot.start
                if at < end and start < at + length and entry.fits(at):
                    yield at
            day += timedelta(days=1)

    def _appointment(self, appointment_id: str) -> Appointment:
        found = self._ports.appointments.get(appointment_id)
        if found is None:
            raise NotFound(
                f"appointment {appointment_id!r} does not exist", appointment_id=appointment_id
            )
        return found


def _instant(value: object) -> datetime:
    return datetime.fromisoformat(str(value))
