"""In-memory doctors: profiles, time off and schedule versions, under the store's one lock."""

from __future__ import annotations

from datetime import datetime

from adapters.memory.store import MemoryStore, parse_cursor, sort_key
from domain.clinics import require_clinic
from domain.errors import ScheduleChanged, TimeOffConflict, ZoneChanged
from domain.events import Event
from domain.rules import Schedule
from domain.schedule import Doctor
from domain.time_off import TimeOff
from ports.repositories import Cursor, Page


class InMemoryDoctorRepository:
    """One clinic's doctors, their time off and schedule versions in a `MemoryStore`."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        self._store = store
        self._clinic = clinic_id

    def put(self, doctor: Doctor, *, keep_zone: bool = False) -> bool:
        """Create or replace and bump the version; True if new. `keep_zone`: see the port."""
        require_clinic(self._clinic, doctor.clinic_id, "a doctor")
        key = (self._clinic, doctor.doctor_id)
        with self._store.lock:
            before = self._store.doctors.get(key)
            if keep_zone and before is not None and before.time_zone != doctor.time_zone:
                raise ZoneChanged(before.time_zone)
            if before == doctor:
                return False  # the same profile: no version bump, no stale caches
            self._store.doctors[key] = doctor
            self._bump(doctor.doctor_id)
            return before is None

    def _bump(self, doctor_id: str) -> None:
        versions = self._store.schedule_versions
        key = (self._clinic, doctor_id)
        versions[key] = versions.get(key, 0) + 1

    def get(self, doctor_id: str) -> Doctor | None:
        """The doctor, or None."""
        with self._store.lock:
            return self._store.doctors.get((self._clinic, doctor_id))

    def schedule(self, doctor_id: str, since: datetime) -> Schedule | None:
        """The doctor, its version and its time off ending after `since`, or None."""
        with self._store.lock:
            doctor = self._store.doctors.get((self._clinic, doctor_id))
            if doctor is None:
                return None
            blocks = sorted(
                (b for b in self._blocks(doctor_id) if b.end > since),
                key=lambda b: (b.start, b.time_off_id),
            )
            version = self._store.schedule_versions.get((self._clinic, doctor_id), 0)
            return Schedule(doctor, version, tuple(blocks))

    def _blocks(self, doctor_id: str) -> list[TimeOff]:
        return [
            b
            for (clinic, doctor, _), b in self._store.time_off.items()
            if clinic == self._clinic and doctor == doctor_id
        ]

    def get_time_off(self, doctor_id: str, time_off_id: str) -> TimeOff | None:
        """One block, or None."""
        with self._store.lock:
            return self._store.time_off.get((self._clinic, doctor_id, time_off_id))

    def put_time_off(self, block: TimeOff, schedule: Schedule, event: Event) -> None:
        """Create or replace a block unless it covers active appointments; bump the version."""
        require_clinic(self._clinic, block.clinic_id, "time off")
        s = self._store
        with s.lock:
            self._expect(block.doctor_id, schedule.version)
            covered = sorted(
                (
                    a
                    for (clinic, _), a in s.appointments.items()
                    if clinic == self._clinic
                    and a.doctor_id == block.doctor_id
                    and a.is_active
                    and block.overlaps(a.start, a.end)
                ),
                key=sort_key,
            )
            held = sorted(
                e.waitlist_id
                for (clinic, _), e in s.waitlist.items()
                if clinic == self._clinic
                and e.doctor_id == block.doctor_id
                and e.offer is not None
                and block.overlaps(e.offer.start, e.offer.end)
            )
            if covered or held:
                raise TimeOffConflict.covering([a.appointment_id for a in covered], held)
            s.time_off[self._clinic, block.doctor_id, block.time_off_id] = block
            self._bump(block.doctor_id)
            s.outbox[event.event_id] = event

    def remove_time_off(self, block: TimeOff, schedule: Schedule, event: Event) -> None:
        """Delete a block and bump the version, while at `schedule.version`."""
        require_clinic(self._clinic, block.clinic_id, "time off")
        s = self._store
        with s.lock:
            self._expect(block.doctor_id, schedule.version)
            key = (self._clinic, block.doctor_id, block.time_off_id)
            if key not in s.time_off:
                raise ScheduleChanged(block.doctor_id)
            del s.time_off[key]
            self._bump(block.doctor_id)
            s.outbox[event.event_id] = event

    def _expect(self, doctor_id: str, version: int) -> None:
        key = (self._clinic, doctor_id)
        if key not in self._store.doctors or self._store.schedule_versions.get(key) != version:
            raise ScheduleChanged(doctor_id)

    def list_time_off(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page[TimeOff]:
        """A doctor's blocks overlapping [start_from, start_to), by start."""
        after = parse_cursor(cursor) if cursor is not None else None
        with self._store.lock:
            found = sorted(
                (b for b in self._blocks(doctor_id) if b.overlaps(start_from, start_to)),
                key=_block_order,
            )
        if after is not None:
            found = [b for b in found if _block_order(b) > after]
        items = found[:limit]
        last = items[-1] if items and len(found) > limit else None
        next_cursor = (
            {"start": last.start.isoformat(), "id": last.time_off_id} if last is not None else None
        )
        return Page(items, next_cursor)


def _block_order(block: TimeOff) -> tuple[datetime, str]:
    return block.start, block.time_off_id
