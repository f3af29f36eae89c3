"""Time off and bookings race safely on every backend: exactly one wins.

CONTRACT ("Doctors", "Rules"): creating time off and booking the same time race safely, and no
active appointment ever lies inside time off. Each test runs on memory and on DynamoDB Local,
with real threads released together by a barrier, and with two containers (two `Clinic`s over
the same repositories, each with its own schedule cache) where a stale cache matters.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, cast

import pytest

from adapters.aws.dynamodb import appointment_from_item
from adapters.memory.store import InMemoryBookingRequestQueue
from adapters.system import FixedClock, UuidV7Generator
from domain.appointment import Appointment
from domain.commands import PutTimeOff, RegisterDoctor, RemoveTimeOff, RescheduleAppointment
from domain.countries import CountryCatalog
from domain.errors import (
    DoctorUnavailable,
    ScheduleChanged,
    TimeOffConflict,
)
from domain.use_cases import Clinic
from domain.use_cases.doctors import TimeOffResult
from ports.repositories import AppointmentRepository, DoctorRepository
from tests.integration.aws_world import (
    NOW,
    THU,
    WED,
    WEEKDAY_HOURS,
    Repositories,
    all_items,
    at,
    booking,
    fresh_table,
    local_client,
)
from tests.support.dynamodb_local import DynamoDBLocal

FRI, MON = date(2026, 12, 4), date(2026, 12, 7)
BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("dynamodb_local", id="dynamodb_local", marks=pytest.mark.dynamodb_local),
]
# Who starts late, by how many units, round after round: both orders get their turn. A time
# off makes four round trips to a booking's one or two: the booking waits longer more often.
DELAYS = [(None, 0), ("booking", 2), ("time off", 1), ("booking", 5), ("booking", 9)]
BLOCK = "bloque"


@pytest.fixture(params=BACKENDS)
def repos(request: pytest.FixtureRequest) -> Iterator[Repositories]:
    """A fresh backend: one memory store, or a new table on the session's DynamoDB Local."""
    if request.param == "memory":
        yield Repositories.memory()
        return
    server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
    client = local_client(server.endpoint_url, pool=16)
    table = fresh_table(client)
    yield Repositories.dynamodb(table, client)
    client.delete_table(TableName=table)


@pytest.fixture(autouse=True)
def switch_threads_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


class Spy:
    """The appointment repository, counting writes refused for a stale schedule version."""

    def __init__(self, inner: AppointmentRepository) -> None:
        self.inner, self.stale = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _count(self, write: Callable[..., None], *args: Any) -> None:
        try:
            write(*args)
        except ScheduleChanged:
            self.stale += 1
            raise

    def add(self, *args: Any) -> None:
        self._count(self.inner.add, *args)

    def update(self, *args: Any) -> None:
        self._count(self.inner.update, *args)


def container(repos: Repositories) -> tuple[Clinic, Spy]:
    """One container: its own Clinic (and schedule cache) over the shared repositories."""
    spy = Spy(repos.appointments)
    clinic = Clinic(
        cast(AppointmentRepository, spy),
        repos.doctors,
        repos.requests,
        InMemoryBookingRequestQueue(),
        FixedClock(NOW.astimezone(UTC)),
        UuidV7Generator(),
        CountryCatalog(),
        clinic_id="demo",
    )
    return clinic, spy


def new_doctor(clinic: Clinic, doctor_id: str) -> str:
    clinic.register_doctor(RegisterDoctor(doctor_id, "Dra. Rosa", "PE", WEEKDAY_HOURS))
    return doctor_id


def block(doctor_id: str, start: datetime, end: datetime) -> PutTimeOff:
    return PutTimeOff(doctor_id, BLOCK, start, end, reason="congreso")


def race(*jobs: Callable[[], Any], late: int | None = None, delay: float = 0.0) -> list[Any]:
    """Run the jobs on threads released by one barrier (job `late` waits `delay` more)."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        if i == late:
            time.sleep(delay)
        try:
            results[i] = jobs[i]()
        except Exception as error:  # the outcome under test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread never finished"
    return results


def late(repos: Repositories, n: int, jobs: dict[str, int]) -> dict[str, Any]:
    """`race`'s late job and delay for round `n` (a unit: 1 ms on memory, 10 on DynamoDB)."""
    who, units = DELAYS[n % len(DELAYS)]
    unit = 0.01 if repos.client is not None else 0.001
    return {"late": jobs.get(who or ""), "delay": units * unit}


def stored_active(repos: Repositories, doctor_id: str) -> list[Appointment]:
    """The doctor's active appointments, read consistently (a base-table Scan on DynamoDB)."""
    if repos.client is not None:
        found = [
            appointment_from_item(i)
            for i in all_items(repos.client, repos.table)
            if str(i["pk"]).startswith("demo#APPT#")
        ]
    else:
        low, high = at(WED, "00:00") - timedelta(days=2), at(FRI, "23:00") + timedelta(days=9)
        found = list(repos.appointments.list_by_doctor(doctor_id, low, high, 100, None).items)
    return [a for a in found if a.doctor_id == doctor_id and a.is_active]


def inside(active: list[Appointment], start: datetime, end: datetime) -> set[str]:
    return {a.appointment_id for a in active if a.start < end and start < a.end}


def test_one_booking_and_one_time_off_over_it_exactly_one_wins(repos: Repositories) -> None:
    """Twenty rounds of one booking vs one block covering its slot: never both, never neither.

    The booking wins (the block is refused naming it) or the block wins (the booking is
    refused as time off, on its first read or after its stale version was refused). Odd
    rounds book from a container whose cache is warm (and stale after every block), even
    rounds from a cold one; a fresh slot and block each round.
    """
    (warm, spy), (b, _) = container(repos), container(repos)
    doctor = new_doctor(b, "rosa")
    hours = [f"{h:02d}:{m:02d}" for h in (9, 10, 11, 12, 14) for m in (0, 30)]
    slots = [at(day, hhmm) for day in (WED, THU) for hhmm in hours]
    shapes = [(0, 30), (15, 20), (0, 5), (25, 30)]  # minutes into the slot: never the next
    outcomes: Counter[str] = Counter()
    for n in range(20):
        slot = slots[n]
        a = warm if n % 2 else container(repos)[0]
        first, last = (slot + timedelta(minutes=m) for m in shapes[n % len(shapes)])
        off = PutTimeOff(doctor, f"{BLOCK}-{n}", first, last)
        booked, blocked = race(
            partial(a.book, booking(slot, who=n, doctor=doctor)),
            partial(b.put_time_off, off),
            **late(repos, n, {"booking": 0, "time off": 1}),
        )
        kinds = (type(booked).__name__, type(blocked).__name__)
        active = inside(stored_active(repos, doctor), first, last)
        if isinstance(booked, Appointment):
            assert isinstance(blocked, TimeOffConflict), kinds
            assert blocked.details["appointment_ids"] == [booked.appointment_id]
            assert repos.doctors.get_time_off(doctor, off.time_off_id) is None
            assert active == {booked.appointment_id}
            outcomes["booking won"] += 1
        else:
            assert isinstance(booked, DoctorUnavailable), kinds
            assert isinstance(blocked, TimeOffResult) and blocked.created, kinds
            assert active == set()
            outcomes["time off won"] += 1
    outcomes["stale booking refused by its version check"] = spy.stale
    print(f"\none booking vs one time off: {dict(outcomes)}")
    assert sum(n for k, n in outcomes.items() if " won" in k) == 20


class ChangeAfterRead:
    """A's doctor repository: `change` runs (once) right after A's next schedule read."""

    def __init__(self, inner: DoctorRepository, change: Callable[[], Any]) -> None:
        self.inner, self.change = inner, change

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def schedule(self, *args: Any) -> Any:
        found = self.inner.schedule(*args)
        change, self.change = self.change, lambda: None
        change()
        return found


def test_a_stale_cache_crossed_by_one_more_block_answers_doctor_unavailable(
    repos: Repositories,
) -> None:
    """A's cache is stale (B added a block elsewhere); right after A reloads, B adds a block
    over A's slot. The block won, so A's answer is doctor_unavailable: nothing is throttled
    or down. (A stale cache is no race: it does not count against the attempts.)"""
    (a, _), (b, _) = container(repos), container(repos)
    doctor = new_doctor(a, "rosa")
    a.book(booking(at(WED, "10:00"), who=1, doctor=doctor))  # warms A's cache
    b.put_time_off(PutTimeOff(doctor, "otro", at(FRI, "10:00"), at(FRI, "11:00")))
    over = partial(b.put_time_off, block(doctor, at(THU, "10:00"), at(THU, "12:00")))
    a.doctors = cast(DoctorRepository, ChangeAfterRead(repos.doctors, over))
    with pytest.raises(DoctorUnavailable):
        a.book(booking(at(THU, "10:30"), who=2, doctor=doctor))


# Eight slots over three days; the block (Wed 12:00 .. Fri 10:00) covers six of them.
SLOTS = [(WED, "10:00"), (WED, "12:30"), (WED, "16:00"), (THU, "09:00")]
SLOTS += [(THU, "11:30"), (THU, "17:30"), (FRI, "09:30"), (FRI, "10:00")]
SPAN = (at(WED, "12:00"), at(FRI, "10:00"))


def test_eight_bookings_and_one_block_over_three_days_keep_time_off_free(
    repos: Repositories,
) -> None:
    """Eight bookings (different patients) vs one block spanning their days, four rounds.

    If the block was stored, no active appointment lies in it; if refused, it named active
    appointments inside it only (those booked before it looked), and a second try after the
    race names exactly the active appointments inside it: the base-table truth.
    """
    (a, _), (b, _) = container(repos), container(repos)
    outcomes: Counter[str] = Counter()
    for n in range(4):
        doctor = new_doctor(a, f"many-{n}")
        warm = set()
        if n % 2:  # warm A's cache with a booking far from the block
            warm = {a.book(booking(at(MON, "10:00"), who=900 + n, doctor=doctor)).appointment_id}
        jobs: list[Callable[[], Any]] = [
            partial(a.book, booking(at(day, hhmm), who=10 * n + i, doctor=doctor))
            for i, (day, hhmm) in enumerate(SLOTS)
        ]
        jobs.append(partial(b.put_time_off, block(doctor, *SPAN)))
        *booked, blocked = race(*jobs, **late(repos, n, {"booking": 0, "time off": 8}))
        assert all(isinstance(r, (Appointment, DoctorUnavailable)) for r in booked), booked
        winners = {r.appointment_id for r in booked if isinstance(r, Appointment)}
        active = stored_active(repos, doctor)
        assert {x.appointment_id for x in active} == winners | warm
        # The two slots outside the block are always booked.
        assert isinstance(booked[0], Appointment) and isinstance(booked[7], Appointment)
        covered = inside(active, *SPAN)
        if isinstance(blocked, TimeOffResult):
            assert covered == set(), "an active appointment lies inside stored time off"
            outcomes["time off won"] += 1
            continue
        assert isinstance(blocked, TimeOffConflict), blocked
        named = blocked.details["appointment_ids"]
        assert named and len(set(named)) == len(named) == blocked.details["count"]
        assert set(named) <= covered, (named, covered)
        outcomes["refused, naming all" if set(named) == covered else "refused, later ones"] += 1
        assert repos.doctors.get_time_off(doctor, BLOCK) is None
        with pytest.raises(TimeOffConflict) as again:
            b.put_time_off(block(doctor, *SPAN))
        assert set(again.value.details["appointment_ids"]) == covered
    print(f"\neight bookings vs one block: {dict(outcomes)}")


def test_a_stale_container_refuses_new_time_off_and_books_once_it_is_gone(
    repos: Repositories,
) -> None:
    """Container A's cached schedule predates B's time off: A's booking inside it is refused
    (the version check fails, A reloads, the rules refuse); once B removes it, A books it."""
    (a, spy), (b, _) = container(repos), container(repos)
    doctor = new_doctor(a, "rosa")
    a.book(booking(at(WED, "10:00"), who=1, doctor=doctor))  # warms A's cache
    b.put_time_off(block(doctor, at(THU, "10:00"), at(THU, "12:00")))
    calls: Counter[str] = Counter()
    if repos.client is not None:
        repos.client.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
        )
    with pytest.raises(DoctorUnavailable):
        a.book(booking(at(THU, "10:30"), who=2, doctor=doctor))
    if repos.client is not None:
        # The refused transaction, then the reload of the doctor's profile; nothing else.
        assert calls == {"TransactWriteItems": 1, "GetItem": 1}, calls
    assert spy.stale == 1
    assert inside(stored_active(repos, doctor), at(THU, "10:00"), at(THU, "12:00")) == set()
    b.remove_time_off(RemoveTimeOff(doctor, BLOCK))
    calls.clear()
    booked = a.book(booking(at(THU, "10:30"), who=2, doctor=doctor))
    assert booked.start == at(THU, "10:30")
    if repos.client is not None:
        # A's cache still held the block: its refusal is not believed, the schedule reloaded.
        assert calls == {"GetItem": 1, "TransactWriteItems": 1}, calls


def test_a_reschedule_into_time_off_just_made_elsewhere_is_refused(repos: Repositories) -> None:
    """A reschedule into time off another container just created is refused (stale cache);
    and racing, a reschedule and a block over its new time: exactly one wins."""
    (a, spy), (b, _) = container(repos), container(repos)
    doctor = new_doctor(a, "rosa")
    mine = a.book(booking(at(WED, "10:00"), who=1, doctor=doctor))
    b.put_time_off(block(doctor, at(THU, "10:00"), at(THU, "12:00")))
    with pytest.raises(DoctorUnavailable):
        a.reschedule(RescheduleAppointment(mine.appointment_id, at(THU, "10:30")))
    assert a.get(mine.appointment_id).snapshot() == mine.snapshot()
    assert spy.stale == 1

    outcomes: Counter[str] = Counter()
    for n in range(8):
        doctor = new_doctor(a, f"move-{n}")
        mine = a.book(booking(at(WED, "10:00"), who=10 + n, doctor=doctor))
        moved, blocked = race(
            partial(a.reschedule, RescheduleAppointment(mine.appointment_id, at(THU, "10:30"))),
            partial(b.put_time_off, block(doctor, at(THU, "10:00"), at(THU, "12:00"))),
            **late(repos, n, {"booking": 0, "time off": 1}),
        )
        kinds = (type(moved).__name__, type(blocked).__name__)
        now = a.get(mine.appointment_id)
        if isinstance(moved, Appointment):
            assert isinstance(blocked, TimeOffConflict), kinds
            assert blocked.details["appointment_ids"] == [mine.appointment_id]
            assert (now.start, now.version) == (at(THU, "10:30"), 2)
            outcomes["reschedule won"] += 1
        else:
            assert isinstance(moved, DoctorUnavailable), kinds
            assert isinstance(blocked, TimeOffResult), kinds
            assert now.snapshot() == mine.snapshot()
            outcomes["time off won"] += 1
    outcomes["stale move refused by its version check"] = spy.stale - 1
    print(f"\nreschedule vs time off: {dict(outcomes)}")
