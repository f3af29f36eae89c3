"""Doctors, their weekly working hours, slots and the cell grid that makes overlap checkable."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from attrs import field, frozen, validators

from domain.clinics import check_clinic_id
from domain.countries import load_zone
from domain.errors import (
    InvalidSlot,
    OutsideWorkingHours,
    ValidationError,
)
from domain.text import MAX_NAME, check_text, matches, pattern

ALLOWED_SLOT_MINUTES: tuple[int, ...] = (10, 15, 20, 30, 60)
MAX_DURATION_MINUTES = 240
# The shortest duration the API admits; anything that is not a multiple of the doctor's slot
# is then refused as `invalid_slot`.
MIN_DURATION_MINUTES = 5
MAX_RANGES_PER_DAY = 8
# Instants outside these bounds cannot be a visit and would overflow date arithmetic; the
# latest also stands for "every appointment still to come".
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)
# The grid is the greatest common divisor of the allowed slot lengths, so appointments of
# different lengths (and of doctors with different slots, for one patient) share cells
# exactly when they overlap. A unique key per (doctor or patient, cell) is then all any
# backend needs to forbid double booking atomically.
CELL_MINUTES = 5
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
# The contract's ranges of the schedule rules, (lowest, highest, default).
BUFFER_MINUTES = (0, 60, 0)
MIN_NOTICE_MINUTES = (0, 10080, 60)
BOOKING_HORIZON_DAYS = (1, 365, 90)

_HHMM = pattern(r"([01][0-9]|2[0-3]):([0-5][0-9])|(24):(00)")
DOCTOR_ID = pattern(r"[A-Za-z0-9_-]{1,64}")


def parse_hhmm(text: str) -> int:
    """Parse local wall time `HH:MM` (24:00 allowed as an end) into minutes after midnight."""
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(f"expected a time HH:MM, got {text!r}", field="working_hours")
    hours, minutes = (match.group(1), match.group(2)) if match.group(1) else ("24", "00")
    return int(hours) * 60 + int(minutes)


def format_hhmm(minutes: int) -> str:
    """Format minutes after midnight as `HH:MM`."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@frozen(order=True)
class TimeRange:
    """A stretch of local wall time within one day, in minutes after midnight, [start, end)."""

    start: int
    end: int

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValidationError(
                f"working hours {format_hhmm(self.start)}-{format_hhmm(self.end)} are not a "
                "forward range within one day",
                field="working_hours",
            )
        if self.start % CELL_MINUTES or self.end % CELL_MINUTES:
            raise ValidationError(
                f"working hours must fall on {CELL_MINUTES}-minute marks", field="working_hours"
            )

    def contains(self, minute: int, length: int) -> bool:
        """Whether [minute, minute + length) lies inside this range."""
        return self.start <= minute and minute + length <= self.end


def _check_ranges(ranges: Sequence[TimeRange]) -> None:
    for before, after in itertools.pairwise(ranges):
        if after.start < before.end:
            raise ValidationError(
                "working hours of one day must not overlap", field="working_hours"
            )


@frozen
class WorkingHours:
    """Weekly working hours in local wall time: weekday (0 = Monday) → sorted ranges."""

    days: Mapping[int, tuple[TimeRange, ...]] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for ranges in self.days.values():
            _check_ranges(ranges)

    @classmethod
    def parse(cls, raw: Mapping[str, Sequence[Sequence[str]]]) -> WorkingHours:
        """Build from the API shape `{"mon": [["09:00", "13:00"], ...], ...}`."""
        if not isinstance(raw, Mapping):
            raise ValidationError("working_hours must be an object", field="working_hours")
        days: dict[int, tuple[TimeRange, ...]] = {}
        for name, pairs in raw.items():
            if name not in WEEKDAYS:
                raise ValidationError(
                    f"unknown weekday {name!r}; use {', '.join(WEEKDAYS)}", field="working_hours"
                )
            if not isinstance(pairs, Sequence) or isinstance(pairs, str):
                raise ValidationError("each day is a list of [start, end]", field="working_hours")
            ranges = []
            for pair in pairs:
                if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
                    raise ValidationError(
                        "each range is a pair [start, end]", field="working_hours"
                    )
                ranges.append(TimeRange(parse_hhmm(pair[0]), parse_hhmm(pair[1])))
            if ranges:
                days[WEEKDAYS.index(name)] = tuple(sorted(ranges))
        return cls(days)

    def to_dict(self) -> dict[str, list[list[str]]]:
        """`{"mon": [["09:00", "13:00"], ...], ...}`, weekdays in calendar order."""
        return {
            WEEKDAYS[day]: [[format_hhmm(r.start), format_hhmm(r.end)] for r in self.days[day]]
            for day in sorted(self.days)
        }

    def on(self, day: date) -> tuple[TimeRange, ...]:
        """The ranges worked on local date `day`."""
        return self.days.get(day.weekday(), ())


@frozen
class Slot:
    """A bookable stretch of absolute time."""

    start: datetime
    end: datetime

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether this slot shares any instant with [start, end)."""
        return self.start < end and start < self.end


def _valid_clinic_id(_: object, __: object, value: str) -> None:
    check_clinic_id(value)


def _valid_doctor_id(_: object, __: object, value: str) -> None:
    if not matches(DOCTOR_ID, value):
        raise ValidationError("doctor_id is 1-64 letters, digits, '-' or '_'", field="doctor_id")


def _valid_name(_: object, attribute: object, value: str) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ValidationError(f"name is 1-{MAX_NAME} characters", field="name")
    check_text(value, "name")


def check_slot_minutes(value: object) -> int:
    """`value` if it is one of the allowed slot lengths (an integer, not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in ALLOWED_SLOT_MINUTES:
        raise ValidationError(
            f"slot_minutes must be one of {list(ALLOWED_SLOT_MINUTES)}", field="slot_minutes"
        )
    return value


def _valid_slot_minutes(_: object, __: object, value: int) -> None:
    check_slot_minutes(value)


def _valid_zone(_: object, __: object, value: str) -> None:
    load_zone(value)


def check_bounded(value: object, name: str, bounds: tuple[int, int, int]) -> int:
    """`value` if it is an integer (not a boolean) within `bounds` (lowest, highest, default)."""
    low, high, _ = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} is an integer from {low} to {high}", field=name)
    return value


def _bounded(name: str, bounds: tuple[int, int, int]) -> Any:
    def check(_: object, __: object, value: int) -> None:
        check_bounded(value, name, bounds)

    return field(default=bounds[2], validator=check)


def _valid_flag(_: object, attribute: Any, value: bool) -> None:
    if not isinstance(value, bool):
        raise ValidationError(f"{attribute.name} is true or false", field=attribute.name)


@frozen
class Doctor:
    """A doctor's bookable schedule: where they work, in which zone, in which slot length."""

    clinic_id: str = field(validator=_valid_clinic_id)
    doctor_id: str = field(validator=_valid_doctor_id)
    name: str = field(validator=_valid_name)
    country: str = field(validator=validators.instance_of(str))
    time_zone: str = field(validator=_valid_zone)
    working_hours: WorkingHours
    slot_minutes: int = field(default=30, validator=_valid_slot_minutes)
    # Time kept free before and after each of this doctor's appointments (see `Schedule`).
    buffer_minutes: int = _bounded("buffer_minutes", BUFFER_MINUTES)
    min_notice_minutes: int = _bounded("min_notice_minutes", MIN_NOTICE_MINUTES)
    booking_horizon_days: int = _bounded("booking_horizon_days", BOOKING_HORIZON_DAYS)
    works_on_holidays: bool = field(default=False, validator=_valid_flag)

    def snapshot(self) -> dict[str, Any]:
        """The stored form: everything needed to rebuild the doctor, JSON-ready."""
        return {
            "clinic_id": self.clinic_id,
            "doctor_id": self.doctor_id,
            "name": self.name,
            "country": self.country,
            "time_zone": self.time_zone,
            "slot_minutes": self.slot_minutes,
            "working_hours": self.working_hours.to_dict(),
            "buffer_minutes": self.buffer_minutes,
            "min_notice_minutes": self.min_notice_minutes,
            "booking_horizon_days": self.booking_horizon_days,
            "works_on_holidays": self.works_on_holidays,
        }

    @classmethod
    def from_snapshot(cls, raw: Mapping[str, Any]) -> Doctor:
        """Inverse of `snapshot`; a doctor stored before a rule existed gets its default."""
        profile = {k: raw[k] for k in ("clinic_id", "doctor_id", "name", "country", "time_zone")}
        return cls(
            **profile,
            working_hours=WorkingHours.parse(raw["working_hours"]),
            slot_minutes=int(raw["slot_minutes"]),
            buffer_minutes=int(raw.get("buffer_minutes", BUFFER_MINUTES[2])),
            min_notice_minutes=int(raw.get("min_notice_minutes", MIN_NOTICE_MINUTES[2])),
            booking_horizon_days=int(raw.get("booking_horizon_days", BOOKING_HORIZON_DAYS[2])),
            works_on_holidays=bool(raw.get("works_on_holidays", False)),
        )

    @property
    def zone(self) -> ZoneInfo:
        """The doctor's IANA zone."""
        return ZoneInfo(self.time_zone)

    def local(self, instant: datetime) -> datetime:
        """`instant` in the doctor's wall time."""
        return instant.astimezone(self.zone)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants [start, end) of local date `day` (23, 24 or 25 hours long)."""
        return local_day_bounds(day, self.zone)

    def slots_on(self, day: date) -> list[Slot]:
        """Every slot of local date `day` inside working hours, booked or not, in order."""
        found: set[Slot] = set()
        for stretch in self.working_hours.on(day):
            last = stretch.end - self.slot_minutes
            for minute in range(stretch.start, last + 1, self.slot_minutes):
                for start in _instants_of(day, minute, self.zone):
                    if _wall_span_is_exact(start, self.slot_minutes, self.zone):
                        found.add(Slot(start, start + timedelta(minutes=self.slot_minutes)))
        return sorted(found, key=lambda slot: slot.start)

    def check_bookable(self, start: datetime, duration_minutes: int) -> None:
        """Raise unless [start, start + duration) is a whole number of slots inside hours."""
        if duration_minutes <= 0 or duration_minutes % self.slot_minutes:
            raise InvalidSlot(
                f"duration must be a multiple of {self.slot_minutes} minutes",
                slot_minutes=self.slot_minutes,
            )
        wall = self.local(start)
        minute = wall.hour * 60 + wall.minute
        stretch = next(
            (r for r in self.working_hours.on(wall.date()) if r.start <= minute < r.end), None
        )
        if stretch is None:
            raise OutsideWorkingHours(
                "the doctor does not work at that time", working_hours=self.working_hours.to_dict()
            )
        if wall.second or wall.microsecond or (minute - stretch.start) % self.slot_minutes:
            raise InvalidSlot(
                f"start must be on a {self.slot_minutes}-minute slot boundary counted from "
                f"{format_hhmm(stretch.start)}",
                slot_minutes=self.slot_minutes,
            )
        if not stretch.contains(minute, duration_minutes) or not _wall_span_is_exact(
            start, duration_minutes, self.zone
        ):
            raise OutsideWorkingHours(
                "the appointment would run past the end of working hours",
                working_hours=self.working_hours.to_dict(),
            )


def _instants_of(day: date, minute: int, zone: ZoneInfo) -> Iterator[datetime]:
    """The UTC instants showing wall time `minute` on `day`: none in a DST gap, two in a repeat."""
    wall = datetime.combine(day, time(minute // 60, minute % 60))
    for fold in (0, 1):
        candidate = wall.replace(tzinfo=zone, fold=fold)
        instant = candidate.astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            yield instant


def _wall_span_is_exact(start: datetime, minutes: int, zone: ZoneInfo) -> bool:
    """Whether the wall clock advances exactly `minutes` (no DST change inside the span)."""
    end = start + timedelta(minutes=minutes)
    wall_start = start.astimezone(zone).replace(tzinfo=None)
    wall_end = end.astimezone(zone).replace(tzinfo=None)
    return wall_end - wall_start == timedelta(minutes=minutes)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of local date `day` in `zone`."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def cells(start: datetime, end: datetime) -> tuple[datetime, ...]:
    """The UTC grid cells covering [start, end); two spans overlap iff they share a cell."""
    step = timedelta(minutes=CELL_MINUTES)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = epoch + ((start - epoch) // step) * step
    out = []
    cell = first
    while cell < end:
        out.append(cell)
        cell += step
    return tuple(out)
