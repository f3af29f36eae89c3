"""Properties of the memory-backed clinic that hypothesis checks on generated histories.

Three families:
- a state machine that books, moves, confirms, cancels and finishes appointments of two
  doctors and four patients while the clock moves, checking every rule of the contract
  after each step against a model of what must exist;
- availability on any 2026 date, the Santiago DST weekends included: what is offered is
  free, in the future, offered once, and bookable;
- event sourcing: the outbox history of an appointment rebuilds it exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain import events as ev
from domain.appointment import ACTIVE_STATUSES, Appointment, Patient, Status
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import CitasError
from domain.schedule import ALLOWED_SLOT_MINUTES, WEEKDAYS, Slot, cells, format_hhmm
from domain.use_cases import Clinic

T = TypeVar("T")

LIMA = ZoneInfo("America/Lima")
SANTIAGO = ZoneInfo("America/Santiago")

# Every error code of the contract, and those a booking may answer with.
CONTRACT_CODES = frozenset(
    {
        "validation_error",
        "not_found",
        "slot_unavailable",
        "patient_double_booked",
        "invalid_transition",
        "doctor_unavailable",
        "time_off_conflict",
        "version_conflict",
        "payload_too_large",
        "start_in_past",
        "outside_working_hours",
        "invalid_slot",
        "too_soon",
        "too_far",
        "idempotency_key_reused",
        "temporarily_unavailable",
    }
)
BOOKING_CODES = frozenset(
    {
        "validation_error",
        "not_found",
        "slot_unavailable",
        "patient_double_booked",
        "start_in_past",
        "outside_working_hours",
        "invalid_slot",
        "idempotency_key_reused",
        "temporarily_unavailable",
    }
)
FINAL_STATUSES = frozenset({Status.CANCELLED, Status.COMPLETED, Status.NO_SHOW})


# Shared helpers -------------------------------------------------------------------------


# No notice and a year ahead: these properties are about booking and the status machine;
# the schedule rules have properties of their own (test_schedule_properties.py).
ANY_TIME_AHEAD: dict[str, Any] = {"min_notice_minutes": 0, "booking_horizon_days": 365}


@dataclass
class System:
    """The clinic on the memory backend, with its store and clock in reach."""

    store: MemoryStore
    clock: FixedClock
    clinic: Clinic


def build_system(now: datetime) -> System:
    store = MemoryStore()
    clock = FixedClock(now)
    clinic = Clinic(
        InMemoryAppointmentRepository(store, clinic_id="demo"),
        InMemoryDoctorRepository(store, clinic_id="demo"),
        InMemoryBookingRequestRepository(store, clinic_id="demo"),
        InMemoryBookingRequestQueue(),
        clock,
        UuidV7Generator(),
        CountryCatalog(),
        clinic_id="demo",
    )
    return System(store, clock, clinic)


def attempt(action: Callable[..., T], *args: Any) -> T | CitasError:
    """Run a use case; a domain error is an answer, anything else fails the test."""
    try:
        return action(*args)
    except CitasError as error:
        assert error.code in CONTRACT_CODES, f"{error.code!r} is not a code of the contract"
        return error


def code_of(outcome: object) -> str | None:
    return outcome.code if isinstance(outcome, CitasError) else None


def history_of(store: MemoryStore, appointment_id: str) -> list[ev.Event]:
    with store.lock:
        return [e for e in store.outbox.values() if e.appointment_id == appointment_id]


def assert_history_rebuilds(system: System, appointment_id: str) -> list[ev.Event]:
    """The outbox history replays into the stored appointment, versions in step."""
    history = history_of(system.store, appointment_id)
    stored = system.clinic.get(appointment_id)
    assert history, "an appointment without events"
    assert isinstance(history[0], ev.AppointmentRequested)
    assert Appointment.replay(history).snapshot() == stored.snapshot()
    version = 0
    for event in history:
        if isinstance(event, ev.ReminderDue | ev.ConfirmationRequested | ev.AppointmentAtRisk):
            assert event.version == version, "a cadence step must carry the current version"
        else:
            assert event.version == version + 1, [(e.type, e.version) for e in history]
            version = event.version
    assert version == stored.version
    return history


def active_appointments(system: System) -> list[Appointment]:
    with system.store.lock:
        ids = [appointment_id for _, appointment_id in system.store.appointments]
    found = [system.clinic.get(appointment_id) for appointment_id in ids]
    return [a for a in found if a.is_active]


def expected_cells(appointments: list[Appointment]) -> dict[tuple[str, str, str, datetime], str]:
    held: dict[tuple[str, str, str, datetime], str] = {}
    for a in appointments:
        for cell in cells(a.start, a.end):
            held[(a.clinic_id, "doctor", a.doctor_id, cell)] = a.appointment_id
            held[(a.clinic_id, "patient", a.patient.key, cell)] = a.appointment_id
    return held


def overlap(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


# (a) The clinic as a state machine ------------------------------------------------------

OPENS, CLOSES = 7 * 60, 21 * 60
SEVEN_AM_TO_NINE_PM = {day: [["07:00", "21:00"]] for day in WEEKDAYS}
# doctor id -> (country, zone, slot minutes)
MACHINE_DOCTORS: dict[str, tuple[str, ZoneInfo, int]] = {
    "lima": ("PE", LIMA, 30),
    "santiago": ("CL", SANTIAGO, 20),
}
PHONES = ("+51911000001", "+51911000002", "+56922000003", "+56922000004")
# 07:00 in Lima, 09:00 in Santiago; no zone changes offset for months from here.
MACHINE_START = datetime(2026, 12, 1, 12, tzinfo=UTC)

# When a booking starts: either in a busy window that is the same two hours (14:00-16:00
# UTC) for both doctors, so doctors and patients collide often, or at any wall time,
# mostly around opening and closing, where the edges are.
BUSY_WINDOW = {"lima": 9 * 60, "santiago": 11 * 60}
when = st.one_of(
    st.tuples(st.just("busy"), st.integers(0, 120)),
    st.tuples(
        st.just("wall"),
        st.one_of(
            st.integers(OPENS - 30, OPENS + 90),
            st.integers(CLOSES - 90, CLOSES + 15),
            st.integers(0, 24 * 60 - 1),
        ),
    ),
)
days_ahead = st.one_of(st.just(1), st.integers(0, 3))
mostly_aligned = st.sampled_from([True, True, True, False])


@dataclass
class Expected:
    """What the model says an appointment is."""

    doctor_id: str
    phone: str
    start: datetime
    end: datetime
    status: Status
    version: int


class ClinicMachine(RuleBasedStateMachine):
    """Random interleavings of every use case, checked against a model after each step."""

    appointments = Bundle("appointments")

    def __init__(self) -> None:
        super().__init__()
        self.system = build_system(MACHINE_START)
        for doctor_id, (country, zone, slot) in MACHINE_DOCTORS.items():
            self.system.clinic.register_doctor(
                RegisterDoctor(
                    doctor_id,
                    f"Dr. {doctor_id}",
                    country,
                    SEVEN_AM_TO_NINE_PM,
                    zone.key,
                    slot,
                    **ANY_TIME_AHEAD,
                )
            )
        self.expected: dict[str, Expected] = {}
        self.last_version: dict[str, int] = {}
        self.final_status: dict[str, Status] = {}

    @property
    def clinic(self) -> Clinic:
        return self.system.clinic

    def now(self) -> datetime:
        return self.system.clock.now()

    def local_start(
        self, doctor_id: str, day: int, when: tuple[str, int], aligned: bool
    ) -> datetime:
        _, zone, slot = MACHINE_DOCTORS[doctor_id]
        kind, minute = when
        if kind == "busy":
            minute += BUSY_WINDOW[doctor_id]
        if aligned:
            minute = OPENS + (minute - OPENS) // slot * slot
        today = self.now().astimezone(zone).date()
        return datetime.combine(
            today + timedelta(days=day), time(minute // 60, minute % 60), tzinfo=zone
        )

    def predict(
        self,
        doctor_id: str,
        phone: str,
        start: datetime,
        minutes: int,
        moving: str | None = None,
    ) -> str | None:
        """The error a booking (or a move of `moving`) must answer with, in rule order."""
        _, zone, slot = MACHINE_DOCTORS[doctor_id]
        if not 1 <= minutes <= 240:
            return "validation_error"
        if start <= self.now():
            return "start_in_past"
        if minutes % slot:
            return "invalid_slot"
        wall = start.astimezone(zone)
        minute = wall.hour * 60 + wall.minute
        if not OPENS <= minute < CLOSES:
            return "outside_working_hours"
        if (minute - OPENS) % slot:
            return "invalid_slot"
        if minute + minutes > CLOSES:
            return "outside_working_hours"
        end = start + timedelta(minutes=minutes)
        clashing = [
            known
            for appointment_id, known in self.expected.items()
            if appointment_id != moving
            and known.status in ACTIVE_STATUSES
            and overlap(known.start, known.end, start, end)
        ]
        if any(known.doctor_id == doctor_id for known in clashing):
            return "slot_unavailable"
        if any(known.phone == phone for known in clashing):
            return "patient_double_booked"
        return None

    def settle(
        self,
        appointment_id: str,
        outcome: Appointment | CitasError,
        predicted: str | None,
        status: Status,
        span: tuple[datetime, datetime] | None = None,
    ) -> None:
        """Compare an outcome with the prediction and move the model on a success."""
        assert code_of(outcome) == predicted, (code_of(outcome), predicted)
        if isinstance(outcome, CitasError):
            return
        known = self.expected[appointment_id]
        known.version += 1
        known.status = status
        if span is not None:
            known.start, known.end = span
        assert outcome.version == known.version
        assert outcome.status is status
        assert (outcome.start, outcome.end) == (known.start, known.end)

    # Rules ------------------------------------------------------------------------------

    @rule(
        target=appointments,
        doctor_id=st.sampled_from(sorted(MACHINE_DOCTORS)),
        who=st.integers(0, len(PHONES) - 1),
        day=days_ahead,
        when=when,
        aligned=mostly_aligned,
        slots=st.integers(1, 4),
        explicit_duration=st.booleans(),
    )
    def book(
        self,
        doctor_id: str,
        who: int,
        day: int,
        when: tuple[str, int],
        aligned: bool,
        slots: int,
        explicit_duration: bool,
    ) -> object:
        start = self.local_start(doctor_id, day, when, aligned)
        return self.try_booking(doctor_id, who, start, slots, explicit_duration)

    @rule(
        target=appointments,
        doctor_id=st.sampled_from(sorted(MACHINE_DOCTORS)),
        who=st.integers(0, len(PHONES) - 1),
        nth=st.integers(0, 5),
        slots=st.integers(1, 2),
    )
    def book_tomorrow_in_the_busy_hours(
        self, doctor_id: str, who: int, nth: int, slots: int
    ) -> object:
        slot = MACHINE_DOCTORS[doctor_id][2]
        start = self.local_start(doctor_id, 1, ("busy", nth * slot), aligned=True)
        return self.try_booking(doctor_id, who, start, slots, explicit_duration=True)

    def try_booking(
        self, doctor_id: str, who: int, start: datetime, slots: int, explicit_duration: bool
    ) -> object:
        minutes = slots * MACHINE_DOCTORS[doctor_id][2]
        phone = PHONES[who]
        predicted = self.predict(doctor_id, phone, start, minutes)
        duration = minutes if explicit_duration or slots > 1 else None
        command = BookAppointment(doctor_id, Patient(f"Paciente {who}", phone), start, duration)
        outcome = attempt(self.clinic.book, command)
        assert code_of(outcome) == predicted, (code_of(outcome), predicted, start, minutes)
        if isinstance(outcome, CitasError):
            assert outcome.code in BOOKING_CODES
            return multiple()
        assert outcome.status is Status.REQUESTED
        assert outcome.version == 1
        assert outcome.start == start
        assert outcome.duration_minutes == minutes
        self.expected[outcome.appointment_id] = Expected(
            doctor_id, phone, outcome.start, outcome.end, Status.REQUESTED, 1
        )
        return outcome.appointment_id

    @rule(
        appointment_id=appointments,
        day=days_ahead,
        when=when,
        aligned=mostly_aligned,
        slots=st.none() | st.integers(1, 4),
    )
    def reschedule(
        self,
        appointment_id: str,
        day: int,
        when: tuple[str, int],
        aligned: bool,
        slots: int | None,
    ) -> None:
        known = self.expected[appointment_id]
        slot = MACHINE_DOCTORS[known.doctor_id][2]
        start = self.local_start(known.doctor_id, day, when, aligned)
        current_minutes = int((known.end - known.start).total_seconds() // 60)
        minutes = current_minutes if slots is None else slots * slot
        if known.status not in ACTIVE_STATUSES:
            predicted: str | None = "invalid_transition"
        else:
            predicted = self.predict(known.doctor_id, known.phone, start, minutes, appointment_id)
        command = RescheduleAppointment(appointment_id, start, None if slots is None else minutes)
        outcome = attempt(self.clinic.reschedule, command)
        self.settle(
            appointment_id,
            outcome,
            predicted,
            Status.REQUESTED,
            (start, start + timedelta(minutes=minutes)),
        )

    @rule(appointment_id=appointments)
    def confirm(self, appointment_id: str) -> None:
        known = self.expected[appointment_id]
        predicted = None if known.status is Status.REQUESTED else "invalid_transition"
        outcome = attempt(self.clinic.change_status, ChangeStatus(appointment_id, Status.CONFIRMED))
        self.settle(appointment_id, outcome, predicted, Status.CONFIRMED)

    @rule(appointment_id=appointments, reason=st.none() | st.just("el paciente viaja"))
    def cancel_through_status_change(self, appointment_id: str, reason: str | None) -> None:
        known = self.expected[appointment_id]
        predicted = None if known.status in ACTIVE_STATUSES else "invalid_transition"
        outcome = attempt(
            self.clinic.change_status, ChangeStatus(appointment_id, Status.CANCELLED, reason)
        )
        self.settle(appointment_id, outcome, predicted, Status.CANCELLED)

    @rule(appointment_id=appointments)
    def cancel(self, appointment_id: str) -> None:
        known = self.expected[appointment_id]
        outcome = attempt(self.clinic.cancel, CancelAppointment(appointment_id))
        if known.status is Status.CANCELLED:
            # Cancelling a cancelled appointment changes nothing and is no error.
            assert isinstance(outcome, Appointment), outcome
            assert (outcome.status, outcome.version) == (Status.CANCELLED, known.version)
            return
        predicted = None if known.status in ACTIVE_STATUSES else "invalid_transition"
        self.settle(appointment_id, outcome, predicted, Status.CANCELLED)

    @rule(
        appointment_id=appointments,
        visit=st.sampled_from([Status.COMPLETED, Status.NO_SHOW]),
    )
    def record_the_visit(self, appointment_id: str, visit: Status) -> None:
        known = self.expected[appointment_id]
        allowed = known.status is Status.CONFIRMED and self.now() >= known.start
        outcome = attempt(self.clinic.change_status, ChangeStatus(appointment_id, visit))
        self.settle(appointment_id, outcome, None if allowed else "invalid_transition", visit)

    @rule(minutes=st.integers(1, 18 * 60))
    def advance_clock(self, minutes: int) -> None:
        self.system.clock.advance(timedelta(minutes=minutes))

    @rule(appointment_id=appointments, late=st.integers(0, 45))
    def advance_clock_past_start(self, appointment_id: str, late: int) -> None:
        target = self.expected[appointment_id].start + timedelta(minutes=late)
        if target > self.now():
            self.system.clock.set(target)

    # Invariants -------------------------------------------------------------------------

    @invariant()
    def stored_appointments_are_what_the_model_expects(self) -> None:
        with self.system.store.lock:
            assert {i for _, i in self.system.store.appointments} == set(self.expected)
        for appointment_id, known in self.expected.items():
            stored = self.clinic.get(appointment_id)
            assert stored.version >= self.last_version.get(appointment_id, 1)
            self.last_version[appointment_id] = stored.version
            assert (
                stored.doctor_id,
                stored.patient.phone,
                stored.start,
                stored.end,
                stored.status,
                stored.version,
            ) == (
                known.doctor_id,
                known.phone,
                known.start,
                known.end,
                known.status,
                known.version,
            )
            if appointment_id in self.final_status:
                assert stored.status is self.final_status[appointment_id]
            elif stored.status in FINAL_STATUSES:
                self.final_status[appointment_id] = stored.status

    @invariant()
    def nobody_holds_two_overlapping_active_appointments(self) -> None:
        active = active_appointments(self.system)
        for a, b in itertools.combinations(active, 2):
            if a.doctor_id == b.doctor_id or a.patient.phone == b.patient.phone:
                assert not overlap(a.start, a.end, b.start, b.end), (a, b)

    @invariant()
    def held_cells_are_exactly_those_of_active_appointments(self) -> None:
        held = expected_cells(active_appointments(self.system))
        with self.system.store.lock:
            assert dict(self.system.store.cells) == held

    @invariant()
    def each_outbox_history_rebuilds_its_appointment(self) -> None:
        for appointment_id in self.expected:
            assert_history_rebuilds(self.system, appointment_id)


def test_random_operations_keep_every_booking_rule_of_the_contract() -> None:
    run_state_machine_as_test(
        ClinicMachine,
        settings=settings(
            max_examples=150,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


# (b) Availability, DST weekends included ------------------------------------------------

DST_WEEKEND_DATES = (date(2026, 4, 4), date(2026, 4, 5), date(2026, 9, 5), date(2026, 9, 6))
# Weekday -> ranges in minutes after local midnight.
ALL_DAY_RANGES: dict[str, tuple[tuple[int, int], ...]] = {d: ((0, 24 * 60),) for d in WEEKDAYS}
OFFICE_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    **{d: ((8 * 60, 12 * 60 + 30), (14 * 60, 19 * 60)) for d in WEEKDAYS[:5]},
    "sat": ((9 * 60, 13 * 60),),
}
EARLIER_PHONES = ("+56933000001", "+56933000002", "+56933000003")

earlier_bookings = st.lists(
    st.tuples(
        st.sampled_from(["all-day", "office"]),
        st.integers(-1, 1),  # the day before, the day itself, the day after
        st.integers(0, 10_000),  # which slot of that day
        st.integers(1, 3),  # how many slots long
        st.integers(0, len(EARLIER_PHONES) - 1),
        st.booleans(),  # cancelled afterwards
    ),
    max_size=8,
)


def api_hours(ranges: dict[str, tuple[tuple[int, int], ...]]) -> dict[str, list[list[str]]]:
    return {
        day: [[format_hhmm(lo), format_hhmm(hi)] for lo, hi in spans]
        for day, spans in ranges.items()
    }


def slots_by_brute_force(
    zone: ZoneInfo, ranges: dict[str, tuple[tuple[int, int], ...]], slot: int, day: date
) -> list[Slot]:
    """Every 5-minute instant around the day whose local wall time starts a whole slot.

    Walks absolute time rather than wall times, so repeated and skipped hours are seen as
    they happen; a slot counts when the wall clock moves exactly `slot` minutes over it.
    """
    length = timedelta(minutes=slot)
    instant = datetime.combine(day, time(0), tzinfo=UTC) - timedelta(hours=20)
    stop = instant + timedelta(hours=72)
    found = []
    while instant < stop:
        wall = instant.astimezone(zone)
        minute = wall.hour * 60 + wall.minute
        wall_end = (instant + length).astimezone(zone)
        if (
            wall.date() == day
            and wall_end.replace(tzinfo=None) - wall.replace(tzinfo=None) == length
            and any(
                lo <= minute and minute + slot <= hi and (minute - lo) % slot == 0
                for lo, hi in ranges.get(WEEKDAYS[day.weekday()], ())
            )
        ):
            found.append(Slot(instant, instant + length))
        instant += timedelta(minutes=5)
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    day=st.one_of(
        st.sampled_from(DST_WEEKEND_DATES), st.dates(date(2026, 1, 2), date(2026, 12, 30))
    ),
    all_day_slot=st.sampled_from(ALLOWED_SLOT_MINUTES),
    office_slot=st.sampled_from(ALLOWED_SLOT_MINUTES),
    office_country=st.sampled_from(["CL", "PE"]),
    now_minutes=st.integers(-12 * 60, 30 * 60),
    earlier=earlier_bookings,
)
def test_every_offered_slot_is_free_future_unique_and_bookable_once(
    day: date,
    all_day_slot: int,
    office_slot: int,
    office_country: str,
    now_minutes: int,
    earlier: list[tuple[str, int, int, int, int, bool]],
) -> None:
    system = build_system(datetime.combine(day - timedelta(days=5), time(0), tzinfo=UTC))
    clinic = system.clinic
    office_zone = SANTIAGO if office_country == "CL" else LIMA
    clinic.register_doctor(
        RegisterDoctor(
            "all-day",
            "Dra. Guardia",
            "CL",
            api_hours(ALL_DAY_RANGES),
            None,
            all_day_slot,
            **ANY_TIME_AHEAD,
        )
    )
    clinic.register_doctor(
        RegisterDoctor(
            "office",
            "Dr. Consulta",
            office_country,
            api_hours(OFFICE_RANGES),
            None,
            office_slot,
            **ANY_TIME_AHEAD,
        )
    )
    ranges = {"all-day": (SANTIAGO, ALL_DAY_RANGES), "office": (office_zone, OFFICE_RANGES)}

    # Bookings made days ago, some cancelled since; some of them may now lie in the past.
    for doctor_id, offset, index, slots, who, cancelled in earlier:
        doctor = clinic.doctor(doctor_id)
        options = doctor.slots_on(day + timedelta(days=offset))
        if not options:
            continue
        command = BookAppointment(
            doctor_id,
            Patient("Ya Reservado", EARLIER_PHONES[who]),
            options[index % len(options)].start,
            slots * doctor.slot_minutes,
        )
        outcome = attempt(clinic.book, command)
        if isinstance(outcome, CitasError):
            assert outcome.code in {
                "slot_unavailable",
                "patient_double_booked",
                "outside_working_hours",
            }, outcome.code
        elif cancelled:
            clinic.cancel(CancelAppointment(outcome.appointment_id))

    now = datetime.combine(day, time(0), tzinfo=SANTIAGO).astimezone(UTC) + timedelta(
        minutes=now_minutes
    )
    system.clock.set(now)
    patients = (Patient("Paciente Nuevo", f"+5697{n:07d}") for n in itertools.count())

    for doctor_id, (zone, doctor_ranges) in ranges.items():
        doctor = clinic.doctor(doctor_id)
        busy = [(a.start, a.end) for a in active_appointments(system) if a.doctor_id == doctor_id]
        offered = clinic.availability(doctor_id, day).slots

        starts = [s.start for s in offered]
        assert starts == sorted(set(starts)), "a slot is offered twice or out of order"
        assert all(a.end <= b.start for a, b in itertools.pairwise(offered))
        for s in offered:
            assert s.start > now
            assert s.end - s.start == timedelta(minutes=doctor.slot_minutes)
            assert not any(overlap(s.start, s.end, b_start, b_end) for b_start, b_end in busy)
        expected = [
            s
            for s in slots_by_brute_force(zone, doctor_ranges, doctor.slot_minutes, day)
            if s.start > now and not any(overlap(s.start, s.end, b0, b1) for b0, b1 in busy)
        ]
        assert offered == expected

        remaining = list(offered)
        for s in offered:
            booked = clinic.book(BookAppointment(doctor_id, next(patients), s.start))
            assert (booked.start, booked.end) == (s.start, s.end)
            remaining.remove(s)
            assert clinic.availability(doctor_id, day).slots == remaining
        assert remaining == []


# (c) The outbox history rebuilds the appointment ----------------------------------------

REPLAY_START = datetime(2026, 12, 1, 12, tzinfo=UTC)  # 07:00 in Lima

replay_operations = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["confirm", "cancel", "cancel_through_status", "complete", "no_show"])
        ),
        st.tuples(st.just("remind")),
        st.tuples(
            st.just("reschedule"),
            st.integers(0, 3),  # days ahead
            st.integers(0, 27),  # which slot of 07:00-21:00
            st.none() | st.integers(1, 3),  # how many slots long
        ),
        st.tuples(st.just("advance"), st.integers(1, 36 * 60)),
        # Into the six hours after the 24-hour mark, where a reminder is due; then maybe run
        # the reminder job at once.
        st.tuples(st.just("reach_reminder_mark"), st.integers(0, 6 * 60 - 1), st.booleans()),
        st.tuples(st.just("reach_start"), st.integers(0, 60)),
    ),
    max_size=20,
)


def apply_operation(system: System, appointment_id: str, operation: tuple[Any, ...]) -> None:
    clinic, clock = system.clinic, system.clock
    name = operation[0]
    targets = {
        "confirm": Status.CONFIRMED,
        "cancel_through_status": Status.CANCELLED,
        "complete": Status.COMPLETED,
        "no_show": Status.NO_SHOW,
    }
    if name in targets:
        attempt(clinic.change_status, ChangeStatus(appointment_id, targets[name]))
    elif name == "cancel":
        attempt(clinic.cancel, CancelAppointment(appointment_id, "motivo"))
    elif name == "remind":
        clinic.run_cadence()
    elif name == "reschedule":
        _, days, index, slots = operation
        local_today = clock.now().astimezone(LIMA).date()
        start = datetime.combine(
            local_today + timedelta(days=days), time(7), tzinfo=LIMA
        ) + timedelta(minutes=30 * index)
        attempt(
            clinic.reschedule,
            RescheduleAppointment(appointment_id, start, None if slots is None else 30 * slots),
        )
    elif name == "advance":
        clock.advance(timedelta(minutes=operation[1]))
    elif name == "reach_reminder_mark":
        _, after_mark, remind = operation
        target = clinic.get(appointment_id).start - timedelta(hours=24, minutes=-after_mark)
        if target > clock.now():
            clock.set(target)
        if remind:
            clinic.run_cadence()
    else:
        target = clinic.get(appointment_id).start + timedelta(minutes=operation[1])
        if target > clock.now():
            clock.set(target)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=replay_operations)
def test_replaying_the_outbox_history_rebuilds_the_stored_appointment(
    operations: list[tuple[Any, ...]],
) -> None:
    system = build_system(REPLAY_START)
    system.clinic.register_doctor(
        RegisterDoctor("lima", "Dra. Rosa", "PE", SEVEN_AM_TO_NINE_PM, None, 30, **ANY_TIME_AHEAD)
    )
    booked = system.clinic.book(
        BookAppointment(
            "lima",
            Patient("Ana", "+51987654321"),
            datetime(2026, 12, 3, 10, tzinfo=LIMA),
            notes="primera consulta",
        )
    )
    appointment_id = booked.appointment_id
    assert_history_rebuilds(system, appointment_id)
    for operation in operations:
        apply_operation(system, appointment_id, operation)
        history = assert_history_rebuilds(system, appointment_id)
        reminders = [e for e in history if isinstance(e, ev.ReminderDue)]
        # One reminder per start time, never once the appointment is over.
        assert len({e.data["start"] for e in reminders}) == len(reminders)
        finished = False
        for event in history:
            if isinstance(event, ev.ReminderDue):
                assert not finished, "a reminder for a finished appointment"
            finished = finished or event.data.get("status") in {s.value for s in FINAL_STATUSES}
