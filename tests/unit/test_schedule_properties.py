"""Availability and booking agree, for any doctor on any day at any moment (hypothesis).

The contract promises of `GET /doctors/{id}/availability`: "every slot listed is bookable at
that moment, and every bookable slot is listed". This property proves it on the memory
backend with the real national holidays of Peru and Chile, for random doctors (working hours
of one to three ranges a day, the whole day 00:00-24:00 included; every slot length; buffers
of 0..60 minutes, odd ones too; notice of 0..10080 minutes; horizons of 1..365 days; working
on holidays or not), random time off, random earlier appointments (some cancelled, some
longer than a slot, some off the new slot grid, since the doctor's rules changed after they
were booked), on Santiago's DST weekends, on national holidays and on any date of 2026-2027,
with the clock anywhere from 400 days before the day to two days after it (inside the day,
at the edge of the notice, at the edge of the horizon).

For each example:
- every listed slot books (as a new appointment, and as a move of an existing one), and
  frees again when cancelled or moved away;
- every start on the 5-minute grid of the local day that is not listed is refused by
  booking (and by moving, at every start of the slot grid and one in MOVE_EVERY of the
  others), with a domain error and without writing anything;
- what is listed is in order, unique, one slot long, inside the day, and keeps the buffer
  clear of every active appointment (the one rule the store enforces apart from `Rules`).

It does not restate the rules: the two paths must agree, whatever the rules say.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st

from adapters.holidays import LibraryHolidayCalendar
from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Appointment, Patient
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    PutTimeOff,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import CitasError, TimeOffConflict
from domain.schedule import (
    ALLOWED_SLOT_MINUTES,
    WEEKDAYS,
    format_hhmm,
    local_day_bounds,
    parse_hhmm,
)
from domain.use_cases import Clinic
from tests.unit.test_properties import System, active_appointments, overlap

SANTIAGO = ZoneInfo("America/Santiago")
ZONES = {"CL": SANTIAGO, "PE": ZoneInfo("America/Lima")}
DOCTOR = "dr-propiedad"
CLINIC = "demo"
STEP = timedelta(minutes=5)
# Off the slot grid, a move is tried at one start in this many (bookings at every start).
MOVE_EVERY = 12

# Santiago's clock changes: back at 24:00 in April (a 25-hour Saturday), forward at 24:00 in
# September (a 23-hour Sunday); the days around them too.
DST_DATES = (
    date(2026, 4, 4),
    date(2026, 4, 5),
    date(2026, 9, 5),
    date(2026, 9, 6),
    date(2026, 9, 7),
    date(2027, 4, 3),
    date(2027, 4, 4),
    date(2027, 9, 4),
    date(2027, 9, 5),
)
# National holidays: PE 28 Jul, 8 Dec, 25 Dec; CL 18 Sep, 8 Dec (and CL 4 Apr 2026 above,
# Holy Saturday, is a DST date as well).
HOLIDAY_DATES = (
    date(2026, 7, 28),
    date(2026, 12, 8),
    date(2026, 12, 25),
    date(2026, 9, 18),
)

# What a booking or a move of one slot may answer when the time is not bookable. Never
# `patient_double_booked`: every attempt is made by a patient of its own.
REFUSALS = frozenset(
    {
        "start_in_past",
        "outside_working_hours",
        "invalid_slot",
        "too_soon",
        "too_far",
        "doctor_unavailable",
        "slot_unavailable",
    }
)


# Strategies ------------------------------------------------------------------------------

# Working hours of a day, in 5-minute units (0 = 00:00, 288 = 24:00): one to three ranges,
# each at least 5 minutes, one after the other (touching or not), the DST edges (00:00,
# 01:00, 23:00, 24:00) often.
DAY_UNITS = 24 * 12


@st.composite
def day_ranges(draw: st.DrawFn) -> list[list[str]]:
    at = draw(st.one_of(st.sampled_from([0, 12, 96, 276]), st.integers(0, DAY_UNITS - 1)))
    found: list[list[str]] = []
    for _ in range(draw(st.integers(1, 3))):
        if at >= DAY_UNITS:
            break
        end = min(DAY_UNITS, at + draw(st.one_of(st.integers(1, 48), st.integers(1, DAY_UNITS))))
        if draw(st.integers(0, 9)) == 0:
            end = DAY_UNITS
        found.append([format_hhmm(5 * at), format_hhmm(5 * end)])
        at = end + draw(st.one_of(st.just(0), st.integers(0, 36)))
    return found


day_hours = st.one_of(
    day_ranges(),
    st.just([["00:00", "24:00"]]),
    st.just([["08:00", "13:00"], ["14:05", "19:00"]]),
    day_ranges(),
    day_ranges(),
    st.just([]),
)
week_hours = st.tuples(*[day_hours] * len(WEEKDAYS)).map(
    lambda days: {name: ranges for name, ranges in zip(WEEKDAYS, days, strict=True) if ranges}
)
buffers = st.one_of(
    st.just(0),
    st.sampled_from([5, 10, 15, 20, 30, 60]),
    st.sampled_from([1, 7, 13, 59]),
    st.integers(0, 60),
)
notices = st.one_of(
    st.just(0),
    st.integers(0, 600),
    st.sampled_from([60, 1440, 10080]),
    st.integers(0, 10080),
)
horizons = st.one_of(st.integers(1, 7), st.sampled_from([1, 30, 90, 365]), st.integers(1, 365))
days = st.one_of(
    st.sampled_from(DST_DATES),
    st.sampled_from(HOLIDAY_DATES),
    st.dates(date(2026, 1, 1), date(2027, 12, 31)),
)

# Time off: (minutes from local midnight of the day, extra seconds, length in seconds).
time_off_blocks = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 24 * 60), st.integers(-36 * 60, 36 * 60)),
        st.one_of(st.just(0), st.integers(0, 299)),
        st.one_of(
            st.integers(1, 3 * 3600),
            st.sampled_from([300, 600, 1800, 3600]),
            st.integers(1, 3 * 86400),
        ),
    ),
    max_size=3,
)

# Earlier appointments: (day offset, which working range of that day, 5-minute steps from
# its start, the later of two equal wall times, how many 10-minute slots, cancelled since).
# They gather on the day and around its working hours, where they decide what is free.
earlier_appointments = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 0, -1, 1]),
        st.integers(0, 2),
        st.one_of(st.integers(-18, 36), st.integers(-18, 288)),
        st.booleans(),
        st.one_of(st.integers(1, 6), st.integers(1, 24)),
        st.booleans(),
    ),
    max_size=8,
)


def earlier_start(
    day: date, zone: ZoneInfo, hours: dict[str, list[list[str]]], choice: tuple[int, ...]
) -> datetime:
    """The local instant an earlier appointment starts at (maybe in a DST gap: refused)."""
    offset, which, steps, later = choice[:4]
    on = day + timedelta(days=offset)
    ranges = hours.get(WEEKDAYS[on.weekday()]) or [["00:00", "24:00"]]
    first = parse_hhmm(ranges[which % len(ranges)][0])
    minute = min(max(first + 5 * steps, 0), 24 * 60 - 5)
    wall = datetime.combine(on, time(minute // 60, minute % 60))
    return wall.replace(tzinfo=zone, fold=int(later)).astimezone(UTC)


# Where the clock stands: (anchor, seconds from it, rounded to 5 minutes or not).
clocks = st.tuples(
    st.sampled_from(["open", "inside", "notice", "horizon", "open", "open", "anywhere"]),
    st.integers(0, 402 * 86400),
    st.booleans(),
)


def clock_instant(
    choice: tuple[str, int, bool],
    bounds: tuple[datetime, datetime],
    notice_minutes: int,
    horizon_days: int,
) -> datetime:
    """The instant `choice` names, within [day start - 400 days, day end + 2 days]."""
    anchor, seconds, rounded = choice
    lo, hi = bounds
    span = 2 * 26 * 3600  # ± 26 hours around an edge
    if anchor == "inside":
        now = lo + timedelta(seconds=seconds % int((hi - lo).total_seconds()))
    elif anchor == "notice":
        edge = lo - timedelta(minutes=notice_minutes)
        now = edge + timedelta(seconds=seconds % span - span // 2)
    elif anchor == "open":
        # Early enough for the notice, late enough for the horizon, where both allow it.
        room = horizon_days * 86400 - notice_minutes * 60 - int((hi - lo).total_seconds())
        now = lo - timedelta(minutes=notice_minutes, seconds=seconds % max(room, 1))
    elif anchor == "horizon":
        edge = lo - timedelta(days=horizon_days)
        now = edge + timedelta(seconds=seconds % span - span // 2)
    else:
        now = lo - timedelta(days=400) + timedelta(seconds=seconds)
    if rounded:
        now = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
    return min(max(now, lo - timedelta(days=400)), hi + timedelta(days=2))


# The clinic --------------------------------------------------------------------------------


def build_clinic(now: datetime) -> System:
    """A clinic on the memory backend with the real holiday calendar and a fixed clock."""
    store = MemoryStore()
    clock = FixedClock(now)
    clinic = Clinic(
        InMemoryAppointmentRepository(store, clinic_id=CLINIC),
        InMemoryDoctorRepository(store, clinic_id=CLINIC),
        InMemoryBookingRequestRepository(store, clinic_id=CLINIC),
        InMemoryBookingRequestQueue(),
        clock,
        UuidV7Generator(),
        CountryCatalog(),
        clinic_id=CLINIC,
        holidays=LibraryHolidayCalendar(),
    )
    return System(store, clock, clinic)


def patients() -> Iterator[Patient]:
    """A new patient (phone) every time: patient overlap never decides an outcome here."""
    return (Patient("Paciente Prueba", f"+5699{n:07d}") for n in itertools.count())


def written(store: MemoryStore) -> tuple[Any, ...]:
    """Everything a refused booking or move must leave as it was."""
    with store.lock:
        return (
            {key: a.snapshot() for key, a in store.appointments.items()},
            dict(store.cells),
            len(store.outbox),
        )


def counts(store: MemoryStore) -> tuple[int, int, int]:
    """A cheap look at `written`: how many appointments, held cells and events."""
    with store.lock:
        return len(store.appointments), len(store.cells), len(store.outbox)


def try_to(action: Any, command: Any) -> Appointment | CitasError:
    try:
        outcome: Appointment = action(command)
    except CitasError as error:
        return error
    return outcome


# The property ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    country=st.sampled_from(sorted(ZONES)),
    day=days,
    hours=week_hours,
    slot=st.sampled_from(ALLOWED_SLOT_MINUTES),
    buffer=buffers,
    notice=notices,
    horizon=horizons,
    on_holidays=st.booleans(),
    blocks=time_off_blocks,
    earlier=earlier_appointments,
    clock=clocks,
    explicit_duration=st.booleans(),
    move_phase=st.integers(0, MOVE_EVERY - 1),
)
# Always run, whatever is generated: the 25-hour Holy Saturday in Santiago, worked all day
# with an odd buffer, time off, and visits in both 23:00s; the 23-hour Sunday, whose first
# hour does not exist, its first slot exactly at the notice; a holiday of Peru, not worked.
@example(
    country="CL",
    day=date(2026, 4, 4),
    hours={name: [["00:00", "24:00"]] for name in WEEKDAYS},
    slot=30,
    buffer=7,
    notice=0,
    horizon=30,
    on_holidays=True,
    blocks=[(10 * 60, 0, 3600)],
    earlier=[
        (0, 0, 276, False, 3, False),
        (0, 0, 276, True, 3, False),
        (0, 0, 150, False, 1, True),
    ],
    clock=("open", 3600, True),
    explicit_duration=False,
    move_phase=0,
)
@example(
    country="CL",
    day=date(2026, 9, 6),
    hours={name: [["00:00", "02:00"], ["22:00", "24:00"]] for name in WEEKDAYS},
    slot=60,
    buffer=0,
    notice=60,
    horizon=7,
    on_holidays=False,
    blocks=[],
    earlier=[(-1, 1, 0, False, 6, False)],
    clock=("open", 0, False),
    explicit_duration=True,
    move_phase=5,
)
@example(
    country="PE",
    day=date(2026, 7, 28),
    hours={name: [["08:00", "13:00"], ["14:05", "19:00"]] for name in WEEKDAYS},
    slot=15,
    buffer=10,
    notice=60,
    horizon=90,
    on_holidays=False,
    blocks=[],
    earlier=[],
    clock=("open", 86400, False),
    explicit_duration=False,
    move_phase=0,
)
def test_every_listed_slot_books_and_every_slot_that_books_was_listed(
    country: str,
    day: date,
    hours: dict[str, list[list[str]]],
    slot: int,
    buffer: int,
    notice: int,
    horizon: int,
    on_holidays: bool,
    blocks: list[tuple[int, int, int]],
    earlier: list[tuple[int, int, int, bool, int, bool]],
    clock: tuple[str, int, bool],
    explicit_duration: bool,
    move_phase: int,
) -> None:
    zone = ZONES[country]
    midnight = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    system = build_clinic(midnight - timedelta(days=3))
    clinic, store = system.clinic, system.store
    people = patients()

    # 1. Earlier appointments, booked days before under permissive rules (10-minute slots
    # from 00:00 or 00:05, whichever has the start on its grid), some cancelled since; and
    # one far away, to be moved.
    def permissive(first: int) -> None:
        clinic.register_doctor(
            RegisterDoctor(
                DOCTOR,
                "Dra. Propiedad",
                country,
                {name: [[format_hhmm(first), "24:00"]] for name in WEEKDAYS},
                None,
                10,
                buffer_minutes=0,
                min_notice_minutes=0,
                booking_horizon_days=365,
                works_on_holidays=True,
            )
        )

    permissive(0)
    far_away = datetime.combine(day + timedelta(days=10), time(12), tzinfo=zone)
    mover = clinic.book(BookAppointment(DOCTOR, next(people), far_away)).appointment_id
    for choice in earlier:
        start = earlier_start(day, zone, hours, choice)
        *_, slots, cancelled = choice
        permissive(start.minute % 10)
        minutes = 10 * slots
        outcome = try_to(clinic.book, BookAppointment(DOCTOR, next(people), start, minutes))
        if isinstance(outcome, CitasError):
            # Taken by an earlier one, in a DST gap, or running past midnight.
            assert outcome.code in {"slot_unavailable", "outside_working_hours"}, outcome
        elif cancelled:
            clinic.cancel(CancelAppointment(outcome.appointment_id))

    # 2. The doctor's rules change (existing appointments stay), and time off is added
    # where it covers no active appointment.
    clinic.register_doctor(
        RegisterDoctor(
            DOCTOR,
            "Dra. Propiedad",
            country,
            hours,
            None,
            slot,
            buffer_minutes=buffer,
            min_notice_minutes=notice,
            booking_horizon_days=horizon,
            works_on_holidays=on_holidays,
        )
    )
    for n, (minutes, seconds, lasting) in enumerate(blocks):
        start = midnight + timedelta(minutes=minutes, seconds=seconds)
        command = PutTimeOff(
            DOCTOR, f"off-{n}", start, start + timedelta(seconds=lasting), "vacaciones"
        )
        with contextlib.suppress(TimeOffConflict):
            clinic.put_time_off(command)

    # 3. The clock moves to the moment of the question.
    doctor = clinic.doctor(DOCTOR)
    lo, hi = doctor.day_bounds(day)
    now = clock_instant(clock, (lo, hi), notice, horizon)
    system.clock.set(now)
    note(f"now={now.isoformat()} day={day} ({day:%a}) bounds={lo.isoformat()}..{hi.isoformat()}")

    listed = clinic.availability(DOCTOR, day).slots
    note(f"listed={[s.start.astimezone(zone).isoformat() for s in listed]}")
    size = "none" if not listed else "1-5" if len(listed) <= 5 else "more"
    event(f"slots listed: {size}")

    # What is listed: in order, unique, one slot each, inside the day, buffer kept clear.
    length = timedelta(minutes=slot)
    pad = timedelta(minutes=buffer)
    starts = [s.start for s in listed]
    assert starts == sorted(set(starts)), "a slot listed twice or out of order"
    active = [a for a in active_appointments(system) if a.doctor_id == DOCTOR]
    for s in listed:
        assert s.end - s.start == length
        assert lo <= s.start and s.end <= hi
        assert s.start.astimezone(zone).date() == day
        clash = [a for a in active if overlap(s.start - pad, s.end + pad, a.start, a.end)]
        assert not clash, (s, clash)
    assert all(a.end <= b.start for a, b in itertools.pairwise(listed))

    duration = slot if explicit_duration else None

    # 4. Every start of the day that is not listed is refused, by booking and by moving,
    # and nothing is written. Moves are tried at every start of the slot grid and at one in
    # MOVE_EVERY of the other starts (a refused move costs twice a refused booking).
    listed_starts = set(starts)
    grid_starts = {s.start for s in doctor.slots_on(day)}
    before, seen = written(store), counts(store)
    candidate, index = lo, 0
    refused: set[str] = set()
    while candidate < hi:
        if candidate not in listed_starts:
            wall = candidate.astimezone(zone).isoformat()
            booked = try_to(clinic.book, BookAppointment(DOCTOR, next(people), candidate, duration))
            assert isinstance(booked, CitasError), f"{wall} books but was not listed"
            assert booked.code in REFUSALS, booked
            refused.add(booked.code)
            if candidate in grid_starts or index % MOVE_EVERY == move_phase:
                moved = try_to(clinic.reschedule, RescheduleAppointment(mover, candidate, slot))
                assert isinstance(moved, CitasError), f"a visit moves to {wall}, not listed"
                assert moved.code in REFUSALS, moved
            assert counts(store) == seen, f"the refusal at {wall} wrote"
        candidate += STEP
        index += 1
    assert written(store) == before, "a refusal wrote"
    for code in sorted(refused):
        event(f"refused: {code}")

    # 5. Every listed slot books, and frees again when cancelled.
    for s in listed:
        outcome = try_to(clinic.book, BookAppointment(DOCTOR, next(people), s.start, duration))
        assert isinstance(outcome, Appointment), (
            f"{s.start.astimezone(zone).isoformat()} was listed but refused: {outcome!r}"
        )
        assert (outcome.start, outcome.end) == (s.start, s.end)
        clinic.cancel(CancelAppointment(outcome.appointment_id))

    # 6. Every listed slot takes a move, one after the other (each move frees the last).
    for s in listed:
        outcome = try_to(clinic.reschedule, RescheduleAppointment(mover, s.start, slot))
        assert isinstance(outcome, Appointment), (
            f"{s.start.astimezone(zone).isoformat()} was listed but a move there was refused: "
            f"{outcome!r}"
        )
        assert (outcome.start, outcome.end) == (s.start, s.end)
    clinic.cancel(CancelAppointment(mover))

    # Booked and freed again, the day offers what it offered.
    assert clinic.availability(DOCTOR, day).slots == listed


def test_the_dst_dates_are_santiagos_long_and_short_days() -> None:
    """What the examples lean on: 25-hour Saturdays in April, 23-hour Sundays in September."""
    lengths = {d: end - start for d in DST_DATES for start, end in [local_day_bounds(d, SANTIAGO)]}
    assert {d for d, length in lengths.items() if length == timedelta(hours=25)} == {
        date(2026, 4, 4),
        date(2027, 4, 3),
    }
    assert {d for d, length in lengths.items() if length == timedelta(hours=23)} == {
        date(2026, 9, 6),
        date(2027, 9, 5),
    }
