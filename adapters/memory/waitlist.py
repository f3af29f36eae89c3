"""In-memory waitlist: entries by (clinic, id); a hold is the doctor's cells in the offer's name."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.cursors import entry_cursor, entry_order, entry_position
from adapters.memory.store import (
    CellKey,
    InMemoryAppointmentRepository,
    MemoryStore,
    check_schedule,
)
from domain.appointment import Appointment
from domain.clinics import require_clinic
from domain.errors import (
    OfferExpired,
    PatientDoubleBooked,
    SlotUnavailable,
    VersionConflict,
)
from domain.rules import Schedule
from domain.schedule import cells
from domain.waitlist import Offer, WaitlistEntry, WaitStatus
from ports.repositories import Cursor, Page


class InMemoryWaitlistRepository:
    """One clinic's waitlist in a `MemoryStore`, under its one lock."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        self._store = store
        self._clinic = clinic_id

    def add(self, entry: WaitlistEntry) -> None:
        """Store a new waiting entry."""
        require_clinic(self._clinic, entry.clinic_id, "a waitlist entry")
        with self._store.lock:
            key = (self._clinic, entry.waitlist_id)
            if entry.events:
                raise ValueError("a new waitlist entry carries no events")
            if key in self._store.waitlist:
                raise ValueError(f"waitlist entry {entry.waitlist_id} already exists")
            self._store.waitlist[key] = entry.copy()
            self._keep(entry)

    def get(self, waitlist_id: str) -> WaitlistEntry | None:
        """A copy of the entry, or None."""
        with self._store.lock:
            found = self._store.waitlist.get((self._clinic, waitlist_id))
            return found.copy() if found is not None else None

    def list_by_doctor(
        self, doctor_id: str, limit: int, cursor: Cursor, *, waiting: bool = False
    ) -> Page[WaitlistEntry]:
        """A doctor's entries, oldest first."""
        after = entry_position(cursor) if cursor is not None else None
        with self._store.lock:
            found = sorted(
                (
                    e.copy()
                    for (clinic, _), e in self._store.waitlist.items()
                    if clinic == self._clinic
                    and e.doctor_id == doctor_id
                    and (not waiting or e.status is WaitStatus.WAITING)
                ),
                key=entry_order,
            )
        if after is not None:
            found = [e for e in found if entry_order(e) > after]
        items = found[:limit]
        last = items[-1] if items and len(found) > limit else None
        return Page(items, entry_cursor(last) if last is not None else None)

    def holds(self, doctor_id: str, start_from: datetime, start_to: datetime) -> Sequence[Offer]:
        """The offers holding a doctor's time with start in [start_from, start_to)."""
        with self._store.lock:
            offers = [
                e.offer
                for (clinic, _), e in self._store.waitlist.items()
                if clinic == self._clinic and e.doctor_id == doctor_id and e.offer is not None
            ]
        return sorted(
            (o for o in offers if start_from <= o.start < start_to), key=lambda o: o.start
        )

    def offered(self) -> Sequence[WaitlistEntry]:
        """Every entry with an offer, soonest expiry first."""
        with self._store.lock:
            found = [
                e.copy()
                for (clinic, _), e in self._store.waitlist.items()
                if clinic == self._clinic and e.offer is not None
            ]
        return sorted(found, key=lambda e: e.offer.expires_at if e.offer else e.updated_at)

    def offer(self, previous: WaitlistEntry, current: WaitlistEntry, schedule: Schedule) -> None:
        """Hold the offer's cells (and check its buffer and the patient) with the entry's change."""
        offer = current.held_offer()
        s = self._store
        with s.lock:
            self._expect(previous)
            check_schedule(s, current.clinic_id, current.doctor_id, schedule)
            doctor = self._cells("doctor", current.doctor_id, offer.start, offer.end)
            pad = schedule.buffer
            around = self._cells("doctor", current.doctor_id, offer.start - pad, offer.start)
            around |= self._cells("doctor", current.doctor_id, offer.end, offer.end + pad)
            if any(c in s.cells for c in doctor | around):
                raise SlotUnavailable.taken()
            patient = self._cells("patient", current.patient.key, offer.start, offer.end)
            if any(c in s.cells for c in patient):
                raise PatientDoubleBooked.taken()
            for cell in doctor:
                s.cells[cell] = offer.appointment_id
            self._store_entry(current)

    def accept(
        self,
        previous: WaitlistEntry,
        current: WaitlistEntry,
        appointment: Appointment,
        schedule: Schedule,
    ) -> None:
        """Book the appointment over its own held cells and store the booked entry."""
        s = self._store
        with s.lock:
            stored = self._expect(previous)
            held = stored.offer
            if held is None or not held.is_live(current.updated_at):
                raise OfferExpired("the offer expired")
            # The appointment's own repository: the same checks as every booking (the held
            # cells are already the appointment's; the patient's and the buffer must be free).
            InMemoryAppointmentRepository(s, clinic_id=self._clinic).add(
                appointment, None, schedule
            )
            self._store_entry(current)

    def release(self, previous: WaitlistEntry, current: WaitlistEntry, offer: Offer) -> None:
        """Free the offer's cells and store the entry without it."""
        s = self._store
        with s.lock:
            self._expect(previous)
            for cell in self._cells("doctor", current.doctor_id, offer.start, offer.end):
                if s.cells.get(cell) == offer.appointment_id:
                    del s.cells[cell]
            self._store_entry(current)

    def save(self, previous: WaitlistEntry, current: WaitlistEntry) -> None:
        """Store a change that holds no time."""
        with self._store.lock:
            self._expect(previous)
            self._store_entry(current)

    def _expect(self, previous: WaitlistEntry) -> WaitlistEntry:
        stored = self._store.waitlist.get((self._clinic, previous.waitlist_id))
        if stored is None or stored.version != previous.version:
            raise VersionConflict(
                "the waitlist entry changed meanwhile",
                expected=previous.version,
                actual=None if stored is None else stored.version,
            )
        return stored

    def _store_entry(self, entry: WaitlistEntry) -> None:
        require_clinic(self._clinic, entry.clinic_id, "a waitlist entry")
        self._store.waitlist[self._clinic, entry.waitlist_id] = entry.copy()
        self._keep(entry)

    def _keep(self, entry: WaitlistEntry) -> None:
        for event in entry.collect_new_events():
            self._store.outbox[event.event_id] = event

    def _cells(self, role: str, owner: str, start: datetime, end: datetime) -> set[CellKey]:
        return {(self._clinic, role, owner, c) for c in cells(start, end)}
