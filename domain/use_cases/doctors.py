"""Doctors: profiles and schedules, time off, national holidays, a day's bookable slots.

Booking paths go through `with_schedule`, which serves the doctor's schedule from a small
cache of this container: the write it leads to carries the schedule's version and commits only
if the doctor is still at it, so a stale entry costs a retry, never a wrong booking. Everything
a person reads (the doctor, availability, time off) is read fresh.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

from attrs import frozen

from domain import events as ev
from domain.commands import ListTimeOff, PutTimeOff, RegisterDoctor, RemoveTimeOff
from domain.countries import load_zone
from domain.errors import (
    CitasError,
    NotFound,
    ScheduleChanged,
    TemporarilyUnavailable,
    TimeZoneConflict,
    ValidationError,
    ZoneChanged,
)
from domain.pagination import MAX_PAGE
from domain.rules import Rules, Schedule
from domain.schedule import (
    LATEST_INSTANT,
    MAX_DURATION_MINUTES,
    Doctor,
    Slot,
    WorkingHours,
    local_day_bounds,
)
from domain.time_off import TimeOff
from domain.use_cases.context import ListResult, Ports, all_pages, check_limit, signed_page

# An appointment that started before the day may still run into it.
LONGEST_VISIT = timedelta(minutes=MAX_DURATION_MINUTES)
# How many conflicting appointment ids an error names; `count` says how many there are.
LISTED_CONFLICTS = 50
# Doctors whose schedule one container keeps for booking; the least recently used goes first.
SCHEDULE_CACHE_SIZE = 1024
HOLIDAY_YEARS = (2000, 2100)
# Attempts of a change checked against a schedule that another change moved meanwhile.
_SCHEDULE_ATTEMPTS = 2

R = TypeVar("R")


@frozen
class Availability:
    """A doctor's free slots on one local date."""

    doctor: Doctor
    day: date
    slots: list[Slot]


@frozen
class TimeOffResult:
    """A block of time off after a change, its doctor, and whether the block is new."""

    doctor: Doctor
    block: TimeOff
    created: bool


class DoctorUseCases:
    """Register doctors, keep their time off, and answer what their days look like."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports
        self._cache: collections.OrderedDict[str, Schedule] = collections.OrderedDict()
        self._lock = threading.Lock()

    # --- profiles --------------------------------------------------------------------------

    def register_doctor(self, command: RegisterDoctor) -> tuple[Doctor, bool]:
        """Create or replace a doctor; returns the doctor and whether it is new."""
        countries = self._ports.countries
        countries.require(command.country)
        doctor = Doctor(
            clinic_id=self._ports.clinic_id,
            doctor_id=command.doctor_id,
            name=command.name,
            country=command.country,
            time_zone=command.time_zone or countries.default_zone(command.country),
            working_hours=WorkingHours.parse(command.working_hours),
            slot_minutes=command.slot_minutes,
            buffer_minutes=command.buffer_minutes,
            min_notice_minutes=command.min_notice_minutes,
            booking_horizon_days=command.booking_horizon_days,
            works_on_holidays=command.works_on_holidays,
        )
        doctors = self._ports.doctors
        self._forget(doctor.doctor_id)
        try:
            # One write in the common case; only a real change of zone costs a look.
            return doctor, doctors.put(doctor, keep_zone=True)
        except ZoneChanged:
            self._check_zone_change(self.doctor(doctor.doctor_id), doctor.time_zone)
        return doctor, doctors.put(doctor)

    def _check_zone_change(self, doctor: Doctor, new_zone: str) -> None:
        """Refuse a new time zone while the doctor has active appointments still to end.

        Their times were chosen, listed and told to patients in the old zone; changing it
        would silently move every one of them to another wall time.
        """
        now = self._ports.now()
        appointments = self._ports.appointments
        pending = [
            a.appointment_id
            for a in all_pages(
                lambda cursor: appointments.list_by_doctor(
                    doctor.doctor_id, now - LONGEST_VISIT, LATEST_INSTANT, MAX_PAGE, cursor
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
                appointment_ids=pending[:LISTED_CONFLICTS],
                count=len(pending),
            )

    def doctor(self, doctor_id: str) -> Doctor:
        """The doctor, or NotFound."""
        found = self._ports.doctors.get(doctor_id)
        if found is None:
            raise _no_doctor(doctor_id)
        return found

    # --- the rules every booking path applies ----------------------------------------------

    def rules(self, schedule: Schedule) -> Rules:
        """`schedule` judged now, with its country's national holidays."""
        return Rules(schedule, self._ports.now(), self._holiday_of)

    def _holiday_of(self, country: str, day: date) -> str | None:
        try:
            return self._ports.holidays.holidays(country, day.year).get(day)
        except ValidationError:
            # A configured country the calendar does not know has no holidays to apply:
            # refusing every booking there would be worse. GET /holidays says it (400).
            return None

    def schedule(self, doctor_id: str, *, fresh: bool = False) -> Schedule:
        """The doctor's schedule for booking: from this container's cache unless `fresh`."""
        return self._schedule(doctor_id, fresh)[0]

    def _schedule(self, doctor_id: str, fresh: bool) -> tuple[Schedule, bool]:
        """The schedule, and whether it came from the cache."""
        if not fresh:
            with self._lock:
                cached = self._cache.get(doctor_id)
                if cached is not None:
                    self._cache.move_to_end(doctor_id)
                    return cached, True
        found = self._ports.doctors.schedule(doctor_id, self._ports.now() - LONGEST_VISIT)
        if found is None:
            self._forget(doctor_id)
            raise _no_doctor(doctor_id)
        with self._lock:
            self._cache[doctor_id] = found
            self._cache.move_to_end(doctor_id)
            while len(self._cache) > SCHEDULE_CACHE_SIZE:
                self._cache.popitem(last=False)
        return found, False

    def with_schedule(self, doctor_id: str, write: Callable[[Rules], R]) -> R:
        """Run `write` (rules checked, then stored) against the doctor's schedule.

        The one path of every booking and move. A cached schedule may be stale both ways:
        `write` raises ScheduleChanged when the doctor moved on since it was read (the
        write's own check), and a refusal by the rules of a cached schedule (time off since
        removed, a rule since relaxed) is not believed either. Both run once more on a
        fresh schedule; a fresh schedule's answer stands. Two fresh schedules overtaken by
        other changes in a row are a schedule in flux: 503, retry shortly.
        """
        fresh_attempts, fresh = 0, False
        while fresh_attempts < _SCHEDULE_ATTEMPTS:
            schedule, cached = self._schedule(doctor_id, fresh)
            rules = self.rules(schedule)
            try:
                return write(rules)
            except ScheduleChanged:
                self._forget(doctor_id)
            except CitasError as refused:
                if not (cached and any(refused is r for r in rules.raised)):
                    raise
                self._forget(doctor_id)
            # Only a fresh schedule that lost a race counts: a stale cache is no race.
            fresh_attempts += 0 if cached else 1
            fresh = True
        raise _schedule_in_flux()

    def _forget(self, doctor_id: str) -> None:
        with self._lock:
            self._cache.pop(doctor_id, None)

    # --- availability ----------------------------------------------------------------------

    def availability(self, doctor_id: str, day: date) -> Availability:
        """The bookable slots of a doctor on a local date, in order (read fresh)."""
        schedule = self.schedule(doctor_id, fresh=True)
        doctor = schedule.doctor
        start, end = doctor.day_bounds(day)
        pad = schedule.buffer
        appointments = self._ports.appointments
        busy = [
            (a.start, a.end)
            for a in all_pages(
                lambda cursor: appointments.list_by_doctor(
                    doctor_id, start - LONGEST_VISIT - pad, end + pad, MAX_PAGE, cursor
                )
            )
            if a.is_active
        ]
        waitlist = self._ports.waitlist
        if waitlist is not None:
            # Held for a waitlist offer: nobody else may book it while the offer lasts.
            holds = waitlist.holds(doctor_id, start - LONGEST_VISIT - pad, end + pad)
            busy += [(o.start, o.end) for o in holds]
        return Availability(doctor, day, self.rules(schedule).bookable_slots(day, busy))

    # --- time off --------------------------------------------------------------------------

    def put_time_off(self, command: PutTimeOff) -> TimeOffResult:
        """Create or replace a block of time off; 409 time_off_conflict if it covers visits."""
        block = TimeOff.create(
            clinic_id=self._ports.clinic_id,
            doctor_id=command.doctor_id,
            time_off_id=command.time_off_id,
            start=command.start,
            end=command.end,
            reason=command.reason,
        )
        doctors = self._ports.doctors

        def put(schedule: Schedule) -> TimeOffResult:
            before = doctors.get_time_off(block.doctor_id, block.time_off_id)
            data = _block_data(block)
            if before is not None:
                data |= {"previous_start": before.start.isoformat()}
                data |= {"previous_end": before.end.isoformat()}
            doctors.put_time_off(
                block, schedule, self._schedule_event(ev.TimeOffAdded, schedule, data)
            )
            return TimeOffResult(schedule.doctor, block, created=before is None)

        return self._change_schedule(block.doctor_id, put)

    def remove_time_off(self, command: RemoveTimeOff) -> TimeOffResult:
        """Delete a block of time off; NotFound if there is none by that id."""
        doctors = self._ports.doctors

        def remove(schedule: Schedule) -> TimeOffResult:
            block = doctors.get_time_off(command.doctor_id, command.time_off_id)
            if block is None:
                raise NotFound(
                    f"time off {command.time_off_id!r} does not exist",
                    doctor_id=command.doctor_id,
                    time_off_id=command.time_off_id,
                )
            event = self._schedule_event(ev.TimeOffRemoved, schedule, _block_data(block))
            doctors.remove_time_off(block, schedule, event)
            return TimeOffResult(schedule.doctor, block, created=False)

        return self._change_schedule(command.doctor_id, remove)

    def _change_schedule(self, doctor_id: str, change: Callable[[Schedule], R]) -> R:
        """Run `change` on a fresh schedule; again while another change overtakes it."""
        for _attempt in range(_SCHEDULE_ATTEMPTS + 1):
            schedule = self.schedule(doctor_id, fresh=True)
            try:
                return change(schedule)
            except ScheduleChanged:
                continue
            finally:
                self._forget(doctor_id)
        raise _schedule_in_flux()

    def _schedule_event(
        self, kind: type[ev.Event], schedule: Schedule, data: dict[str, str]
    ) -> ev.Event:
        return kind(
            event_id=self._ports.ids.new_id(),
            clinic_id=self._ports.clinic_id,
            appointment_id=None,
            # The schedule version the change makes: consumers order a doctor's changes by it.
            version=schedule.version + 1,
            occurred_at=self._ports.now(),
            data=data,
        )

    def list_time_off(self, command: ListTimeOff) -> tuple[Doctor, ListResult[TimeOff]]:
        """A doctor's blocks overlapping local dates [from, to], by start; one page."""
        check_limit(command.limit)
        if command.to_day < command.from_day:
            raise ValidationError("to must not be before from", field="to")
        doctor = self.doctor(command.doctor_id)
        start = local_day_bounds(command.from_day, doctor.zone)[0]
        end = local_day_bounds(command.to_day, doctor.zone)[1]
        query = {
            "clinic_id": self._ports.clinic_id,
            "doctor_id": command.doctor_id,
            "time_off": [command.from_day.isoformat(), command.to_day.isoformat()],
        }
        doctors = self._ports.doctors
        page = signed_page(
            self._ports.page_tokens,
            query,
            command.next_token,
            lambda cursor: doctors.list_time_off(
                command.doctor_id, start, end, command.limit, cursor
            ),
        )
        return doctor, page

    # --- national holidays -----------------------------------------------------------------

    def national_holidays(
        self, country: str, year: int | None = None
    ) -> tuple[int, list[tuple[date, str]]]:
        """The year and the national public holidays of a configured country then, by date.

        Without a year, the current one in the country's default time zone.
        """
        countries = self._ports.countries
        if year is None:
            zone = load_zone(countries.default_zone(country))
            year = self._ports.now().astimezone(zone).year
        countries.require(country)
        low, high = HOLIDAY_YEARS
        if isinstance(year, bool) or not isinstance(year, int) or not low <= year <= high:
            raise ValidationError(f"year is {low}-{high}", field="year")
        return year, sorted(self._ports.holidays.holidays(country, year).items())


def _schedule_in_flux() -> TemporarilyUnavailable:
    return TemporarilyUnavailable(
        "the doctor's schedule is being changed, retry shortly", service="schedule"
    )


def _block_data(block: TimeOff) -> dict[str, str]:
    """What a time-off event says of its block (never the staff-only reason)."""
    return {
        "doctor_id": block.doctor_id,
        "time_off_id": block.time_off_id,
        "start": block.start.isoformat(),
        "end": block.end.isoformat(),
    }


def _no_doctor(doctor_id: str) -> NotFound:
    return NotFound(f"doctor {doctor_id!r} does not exist", doctor_id=doctor_id)
