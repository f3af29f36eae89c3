"""Many threads against one memory-backed clinic at the same instant.

The threads wait on a barrier and the interpreter switches threads as often as it can, so
the read-check-write steps of the use cases really interleave. No test relies on timing:
each asserts what must hold however the threads were scheduled.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters.memory.doctors import InMemoryDoctorRepository
from adapters.memory.store import (
    InMemoryAppointmentRepository,
    InMemoryBookingRequestQueue,
    InMemoryBookingRequestRepository,
    MemoryStore,
)
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Appointment, Patient, Status
from domain.commands import (
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.countries import CountryCatalog
from domain.errors import CitasError, PatientDoubleBooked, SlotUnavailable
from domain.schedule import WEEKDAYS, cells
from domain.use_cases import Clinic

LIMA = ZoneInfo("America/Lima")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)  # 07:00 in Lima
TOMORROW_AT_TEN = datetime(2026, 12, 2, 10, tzinfo=LIMA)
EVERY_DAY = {day: [["07:00", "21:00"]] for day in WEEKDAYS}


class Harness:
    """A clinic on the memory backend with its store and clock in reach."""

    def __init__(
        self,
        doctors: int = 1,
        repository: type[InMemoryAppointmentRepository] = InMemoryAppointmentRepository,
    ) -> None:
        self.store = MemoryStore()
        self.clock = FixedClock(NOW)
        self.appointments = repository(self.store, clinic_id="demo")
        self.clinic = Clinic(
            self.appointments,
            InMemoryDoctorRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestRepository(self.store, clinic_id="demo"),
            InMemoryBookingRequestQueue(),
            self.clock,
            UuidV7Generator(),
            CountryCatalog(),
            clinic_id="demo",
        )
        for n in range(doctors):
            self.clinic.register_doctor(
                RegisterDoctor(doctor_id(n), f"Dr. {n}", "PE", EVERY_DAY, slot_minutes=30)
            )

    def stored(self) -> list[Appointment]:
        with self.store.lock:
            ids = [appointment_id for _, appointment_id in self.store.appointments]
        return [self.clinic.get(appointment_id) for appointment_id in ids]

    def assert_cells_are_exactly_those_of_active_appointments(self) -> None:
        held: dict[tuple[str, str, str, datetime], str] = {}
        for a in self.stored():
            if a.is_active:
                for cell in cells(a.start, a.end):
                    held[(a.clinic_id, "doctor", a.doctor_id, cell)] = a.appointment_id
                    held[(a.clinic_id, "patient", a.patient.key, cell)] = a.appointment_id
        with self.store.lock:
            assert dict(self.store.cells) == held


def doctor_id(n: int) -> str:
    return f"doctor-{n:02d}"


def patient(n: int) -> Patient:
    return Patient(f"Paciente {n}", f"+5198{n:07d}")


@pytest.fixture(autouse=True)
def switch_threads_as_often_as_possible() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_together(actions: list[Callable[[], Any]]) -> list[Any]:
    """Start every action at once on its own thread; each result or exception, in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def worker(index: int, action: Callable[[], Any]) -> None:
        barrier.wait(timeout=30)
        try:
            results[index] = action()
        except Exception as error:  # kept and judged by the test
            results[index] = error

    threads = [
        threading.Thread(target=worker, args=(index, action), daemon=True)
        for index, action in enumerate(actions)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread never finished"
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, CitasError)]
    assert not unexpected, f"only domain errors may escape a use case: {unexpected!r}"
    return results


def successes(results: list[Any]) -> list[Appointment]:
    return [r for r in results if isinstance(r, Appointment)]


def the_only_success(results: list[Any]) -> Appointment:
    won = successes(results)
    assert len(won) == 1, f"{len(won)} threads succeeded where exactly one may"
    return won[0]


def codes(results: list[Any]) -> list[str]:
    return [r.code for r in results if isinstance(r, CitasError)]


def test_fifty_threads_booking_one_slot_make_exactly_one_appointment() -> None:
    world = Harness()
    results = run_together(
        [
            lambda n=n: world.clinic.book(
                BookAppointment(doctor_id(0), patient(n), TOMORROW_AT_TEN)
            )
            for n in range(50)
        ]
    )

    winner = the_only_success(results)
    assert all(isinstance(r, SlotUnavailable) for r in results if r is not winner)
    assert codes(results) == ["slot_unavailable"] * 49
    assert [a.appointment_id for a in world.stored()] == [winner.appointment_id]
    assert world.clinic.get(winner.appointment_id).snapshot() == winner.snapshot()
    world.assert_cells_are_exactly_those_of_active_appointments()
    assert len(world.store.cells) == 2 * len(cells(winner.start, winner.end))


def test_fifty_threads_booking_one_patient_with_fifty_doctors_at_once_book_only_once() -> None:
    world = Harness(doctors=50)
    same_patient = patient(7)
    results = run_together(
        [
            lambda n=n: world.clinic.book(
                BookAppointment(doctor_id(n), same_patient, TOMORROW_AT_TEN)
            )
            for n in range(50)
        ]
    )

    winner = the_only_success(results)
    assert all(isinstance(r, PatientDoubleBooked) for r in results if r is not winner)
    assert codes(results) == ["patient_double_booked"] * 49
    assert [a.appointment_id for a in world.stored()] == [winner.appointment_id]
    world.assert_cells_are_exactly_those_of_active_appointments()


def test_twenty_threads_moving_twenty_appointments_into_one_free_slot_move_only_one() -> None:
    world = Harness()
    before = {
        n: world.clinic.book(
            BookAppointment(
                doctor_id(0), patient(n), TOMORROW_AT_TEN + timedelta(minutes=30 * (n - 6))
            )
        )
        for n in range(20)
    }  # 07:00 to 16:30, every slot taken
    free_slot = datetime(2026, 12, 2, 19, tzinfo=LIMA)

    results = run_together(
        [
            lambda a=a: world.clinic.reschedule(RescheduleAppointment(a.appointment_id, free_slot))
            for a in before.values()
        ]
    )

    winner = the_only_success(results)
    assert (winner.start, winner.version, winner.status) == (free_slot, 2, Status.REQUESTED)
    assert codes(results) == ["slot_unavailable"] * 19
    for original in before.values():
        now_stored = world.clinic.get(original.appointment_id)
        if original.appointment_id == winner.appointment_id:
            assert now_stored.snapshot() == winner.snapshot()
        else:
            assert now_stored.snapshot() == original.snapshot(), "a loser lost its old slot"
    world.assert_cells_are_exactly_those_of_active_appointments()
    free_now = {s.start for s in world.clinic.availability(doctor_id(0), free_slot.date()).slots}
    [old_start] = [a.start for a in before.values() if a.appointment_id == winner.appointment_id]
    assert old_start in free_now, "the winner's old slot was not freed"
    assert free_slot not in free_now


def test_twenty_threads_changing_one_status_without_if_match_lose_no_update() -> None:
    world = Harness()
    booked = world.clinic.book(BookAppointment(doctor_id(0), patient(1), TOMORROW_AT_TEN))
    world.clock.set(TOMORROW_AT_TEN + timedelta(minutes=40))  # the visit has happened
    targets = [Status.CONFIRMED, Status.COMPLETED, Status.NO_SHOW, Status.CANCELLED] * 5

    results = run_together(
        [
            lambda t=t: world.clinic.change_status(ChangeStatus(booked.appointment_id, t))
            for t in targets
        ]
    )

    won = successes(results)
    # requested -> confirmed | cancelled, then confirmed -> one final status: one or two.
    assert 1 <= len(won) <= 2
    assert codes(results) == ["invalid_transition"] * (20 - len(won))
    final = world.clinic.get(booked.appointment_id)
    assert final.version == 1 + len(won)
    assert sorted(a.version for a in won) == list(range(2, 2 + len(won)))
    assert final.status is max(won, key=lambda a: a.version).status
    with world.store.lock:
        history = [
            e for e in world.store.outbox.values() if e.appointment_id == booked.appointment_id
        ]
    assert [e.version for e in history] == list(range(1, 2 + len(won)))
    assert Appointment.replay(history).snapshot() == final.snapshot()
    world.assert_cells_are_exactly_those_of_active_appointments()


def test_twenty_threads_holding_the_same_if_match_version_let_exactly_one_change_win() -> None:
    world = Harness()
    booked = world.clinic.book(BookAppointment(doctor_id(0), patient(1), TOMORROW_AT_TEN))
    targets = [Status.CONFIRMED, Status.CANCELLED] * 10

    results = run_together(
        [
            lambda t=t: world.clinic.change_status(
                ChangeStatus(booked.appointment_id, t, expected_version=1)
            )
            for t in targets
        ]
    )

    winner = the_only_success(results)
    assert codes(results) == ["version_conflict"] * 19
    assert world.clinic.get(booked.appointment_id).snapshot() == winner.snapshot()
    assert winner.version == 2


def test_fifty_threads_booking_overlapping_spans_leave_no_overlap_behind() -> None:
    world = Harness(doctors=2)
    # Spans of one to three slots between 10:00 and 12:30 at two doctors, five patients:
    # every pair of them may clash on the doctor, on the patient, or not at all.
    commands = [
        BookAppointment(
            doctor_id(n % 2),
            patient(n % 5),
            TOMORROW_AT_TEN + timedelta(minutes=30 * (n % 4)),
            30 * (1 + n % 3),
        )
        for n in range(50)
    ]

    results = run_together([lambda c=c: world.clinic.book(c) for c in commands])

    assert set(codes(results)) <= {"slot_unavailable", "patient_double_booked"}
    active = [a for a in world.stored() if a.is_active]
    assert len(active) == len(successes(results)) >= 1
    for i, a in enumerate(active):
        for b in active[i + 1 :]:
            if a.doctor_id == b.doctor_id or a.patient.phone == b.patient.phone:
                assert not (a.start < b.end and b.start < a.end), (a, b)
    world.assert_cells_are_exactly_those_of_active_appointments()


# Races played in a fixed order -----------------------------------------------------------


class PausingRepository(InMemoryAppointmentRepository):
    """Holds the first `update` until the test lets it go, so a race is played in order."""

    def __init__(self, store: MemoryStore, *, clinic_id: str) -> None:
        super().__init__(store, clinic_id=clinic_id)
        self.holding = threading.Event()
        self.release = threading.Event()
        self._first = True
        self._guard = threading.Lock()

    def update(self, previous: Appointment, current: Appointment) -> None:
        with self._guard:
            first, self._first = self._first, False
        if first:
            self.holding.set()
            assert self.release.wait(timeout=30)
        super().update(previous, current)


def lose_a_race(world: Harness, slow: Callable[[], Any], fast: Callable[[], Any]) -> Any:
    """Run `slow` until it is about to write, let `fast` finish, then let `slow` write."""
    assert isinstance(world.appointments, PausingRepository)
    outcome: list[Any] = []

    def run_slow() -> None:
        try:
            outcome.append(slow())
        except Exception as error:  # judged by the test
            outcome.append(error)

    thread = threading.Thread(target=run_slow, daemon=True)
    thread.start()
    assert world.appointments.holding.wait(timeout=30), "the slow change never tried to write"
    fast()
    world.appointments.release.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome[0]


def test_a_change_that_lost_a_race_without_if_match_is_applied_again_to_the_new_state() -> None:
    world = Harness(repository=PausingRepository)
    booked = world.clinic.book(BookAppointment(doctor_id(0), patient(1), TOMORROW_AT_TEN))
    appointment_id = booked.appointment_id

    outcome = lose_a_race(
        world,
        slow=lambda: world.clinic.change_status(ChangeStatus(appointment_id, Status.CANCELLED)),
        fast=lambda: world.clinic.change_status(ChangeStatus(appointment_id, Status.CONFIRMED)),
    )

    assert isinstance(outcome, Appointment), outcome
    assert (outcome.status, outcome.version) == (Status.CANCELLED, 3)
    with world.store.lock:
        history = [e for e in world.store.outbox.values() if e.appointment_id == appointment_id]
    assert [(e.type, e.version) for e in history] == [
        ("AppointmentRequested", 1),
        ("AppointmentConfirmed", 2),
        ("AppointmentCancelled", 3),
    ]
    assert history[-1].data["previous_status"] == "confirmed"
    world.assert_cells_are_exactly_those_of_active_appointments()


def test_a_change_that_lost_a_race_with_if_match_fails_and_changes_nothing() -> None:
    world = Harness(repository=PausingRepository)
    booked = world.clinic.book(BookAppointment(doctor_id(0), patient(1), TOMORROW_AT_TEN))
    appointment_id = booked.appointment_id

    outcome = lose_a_race(
        world,
        slow=lambda: world.clinic.change_status(
            ChangeStatus(appointment_id, Status.CANCELLED, expected_version=1)
        ),
        fast=lambda: world.clinic.change_status(ChangeStatus(appointment_id, Status.CONFIRMED)),
    )

    assert getattr(outcome, "code", None) == "version_conflict"
    stored = world.clinic.get(appointment_id)
    assert (stored.status, stored.version) == (Status.CONFIRMED, 2)


def test_a_cancel_that_lost_a_race_to_another_cancel_still_answers_with_the_cancellation() -> None:
    world = Harness(repository=PausingRepository)
    booked = world.clinic.book(BookAppointment(doctor_id(0), patient(1), TOMORROW_AT_TEN))
    appointment_id = booked.appointment_id

    outcome = lose_a_race(
        world,
        slow=lambda: world.clinic.cancel(CancelAppointment(appointment_id)),
        fast=lambda: world.clinic.cancel(CancelAppointment(appointment_id)),
    )

    assert isinstance(outcome, Appointment), f"a repeated DELETE answered {outcome!r}"
    assert (outcome.status, outcome.version) == (Status.CANCELLED, 2)
