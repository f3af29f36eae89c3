"""The booking rules, in one place: every route that books or moves, and availability, ask here.

A `Schedule` is what decides a doctor's bookable time: the profile (hours, slot, buffer, notice,
horizon, holidays or not), its time off, and the version that every change of either bumps.
`Rules` adds the clock's reading and the national holidays. `refusal` is the single judge:
booking raises what it returns, availability lists the slots it has nothing against, so the two
can never disagree. Only what is held in storage (other appointments, with the buffer) is left
to the repository, which checks it atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta

from attrs import field, frozen

from domain.errors import (
    CitasError,
    DoctorUnavailable,
    OutsideWorkingHours,
    StartInPast,
    TooFar,
    TooSoon,
)
from domain.schedule import Doctor, Slot
from domain.time_off import TimeOff

# (country, local date) → the name of the national holiday on that date, or None.
HolidayOf = Callable[[str, date], str | None]


def no_holidays(country: str, day: date) -> str | None:
    """A calendar without holidays, for runtimes that bring none."""
    return None


@frozen
class Schedule:
    """A doctor as booking sees it: profile, time off, and the version of both."""

    doctor: Doctor
    # Bumped by every change of the profile or the time off; a booking checked against one
    # version commits only while the doctor is still at it.
    version: int
    time_off: tuple[TimeOff, ...] = ()

    @property
    def buffer(self) -> timedelta:
        """The time kept free before and after each appointment."""
        return timedelta(minutes=self.doctor.buffer_minutes)


@frozen
class Rules:
    """A schedule judged at one instant, with the national holidays of its country."""

    schedule: Schedule
    now: datetime
    holiday_of: HolidayOf = no_holidays
    # The refusals `check` raised: a caller that judged on a cached schedule asks again.
    raised: list[CitasError] = field(factory=list, eq=False)

    @property
    def doctor(self) -> Doctor:
        """The doctor the rules are about."""
        return self.schedule.doctor

    def refusal(self, start: datetime, minutes: int) -> CitasError | None:
        """Why [start, start + minutes) cannot be booked by its own rules, or None.

        Checked in the order a receptionist reads them: when (past, hours, slot, holiday),
        then how soon or far, then the doctor's time off.
        """
        doctor, now = self.doctor, self.now
        if start <= now:
            return StartInPast("the start time has already passed", now=now.isoformat())
        try:
            doctor.check_bookable(start, minutes)
        except CitasError as e:
            return e
        day = doctor.local(start).date()
        holiday = None if doctor.works_on_holidays else self.holiday_of(doctor.country, day)
        if holiday is not None:
            return OutsideWorkingHours(
                f"{day.isoformat()} is a national holiday ({holiday})",
                holiday=holiday,
                date=day.isoformat(),
            )
        earliest = now + timedelta(minutes=doctor.min_notice_minutes)
        if start < earliest:
            return TooSoon(
                f"this doctor takes bookings at least {doctor.min_notice_minutes} minutes ahead",
                min_notice_minutes=doctor.min_notice_minutes,
            )
        latest = now + timedelta(days=doctor.booking_horizon_days)
        if start > latest:
            return TooFar(
                f"this doctor takes bookings at most {doctor.booking_horizon_days} days ahead",
                booking_horizon_days=doctor.booking_horizon_days,
            )
        end = start + timedelta(minutes=minutes)
        block = next((b for b in self.schedule.time_off if b.overlaps(start, end)), None)
        if block is not None:
            # The reason is staff-only: the error may be shown to a patient by a bot.
            return DoctorUnavailable(
                "the doctor is not available then (time off)",
                time_off_id=block.time_off_id,
            )
        return None

    def check(self, start: datetime, minutes: int) -> None:
        """Raise the refusal of [start, start + minutes), if there is one."""
        refused = self.refusal(start, minutes)
        if refused is not None:
            self.raised.append(refused)
            raise refused

    def bookable_slots(self, day: date, busy: Iterable[tuple[datetime, datetime]]) -> list[Slot]:
        """The slots of local date `day` the rules allow and no `busy` span (with buffers) takes."""
        taken = list(busy)
        pad = self.schedule.buffer
        minutes = self.doctor.slot_minutes
        return [
            slot
            for slot in self.doctor.slots_on(day)
            if self.refusal(slot.start, minutes) is None
            and not any(slot.overlaps(s - pad, e + pad) for s, e in taken)
        ]
