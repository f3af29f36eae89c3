"""Races on DynamoDB Local, AWS's own engine (moto is not safe under concurrent requests).

Whatever the interleaving, the winners never overlap, every active appointment holds exactly
its cells in the day guards, and no cell is left held by nobody.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters.aws.dynamodb import appointment_from_item
from domain.appointment import Appointment
from domain.commands import RescheduleAppointment
from domain.errors import PatientDoubleBooked, SlotUnavailable, TemporarilyUnavailable
from tests.integration.aws_world import (
    WED,
    Repositories,
    World,
    all_items,
    at,
    booking,
    fresh_table,
    held_time,
    local_client,
    time_of,
)
from tests.support.dynamodb_local import DynamoDBLocal

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.dynamodb_local

THREADS = 100


@pytest.fixture
def world(dynamodb_local: DynamoDBLocal) -> Iterator[World]:
    client = local_client(dynamodb_local.endpoint_url, pool=THREADS)
    table = fresh_table(client)
    yield World(Repositories.dynamodb(table, client))
    client.delete_table(TableName=table)


def _race(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run every job on its own thread, all released at once; outcomes in job order."""
    outcomes: list[Any] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = jobs[i]()
        except Exception as e:  # the outcome under test
            outcomes[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def _appointments(client: DynamoDBClient, table: str) -> list[Appointment]:
    return [
        appointment_from_item(i)
        for i in all_items(client, table)
        if str(i["pk"]).startswith("demo#APPT#")
    ]


def _assert_cells_match(world: World) -> list[Appointment]:
    """Every cell is held by the active appointment that covers it, and by nothing else."""
    client, table = world.repos.client, world.repos.table
    assert client is not None
    active = [a for a in _appointments(client, table) if a.is_active]
    expected: dict[str, str] = {}
    for a in active:
        expected.update(time_of(a))
    assert held_time(client, table) == expected
    return active


def _overlap(a: Appointment, b: Appointment) -> bool:
    return a.start < b.end and b.start < a.end


def test_a_hundred_bookings_race_for_five_slots(world: World) -> None:
    rng = random.Random(20261202)
    starts = ["10:00", "10:30", "11:00", "11:30", "12:00"]
    jobs = []
    for _ in range(THREADS):
        index = rng.randrange(len(starts))
        # Durations of 30, 60 or 90 minutes, kept inside the five slots.
        minutes = rng.choice([m for m in (30, 60, 90) if index * 30 + m <= 150])
        # Twenty patients: some threads also collide on the patient.
        command = booking(at(WED, starts[index]), who=rng.randrange(20), minutes=minutes)
        jobs.append(lambda command=command: world.clinic.book(command))

    outcomes = _race(jobs)

    kinds = Counter(type(o).__name__ for o in outcomes)
    allowed = (Appointment, SlotUnavailable, PatientDoubleBooked, TemporarilyUnavailable)
    assert all(isinstance(o, allowed) for o in outcomes), kinds
    winners = [o for o in outcomes if isinstance(o, Appointment)]
    assert winners, kinds
    for i, a in enumerate(winners):
        for b in winners[i + 1 :]:
            assert not _overlap(a, b), (a.start, a.end, b.start, b.end)
    active = _assert_cells_match(world)
    assert {a.appointment_id for a in active} == {w.appointment_id for w in winners}
    # Losers wrote nothing: one event per winner, and the five slots are fully accounted for.
    pending = world.repos.outbox.pending(1000)
    assert sorted(e.appointment_id or "" for e in pending) == sorted(
        w.appointment_id for w in winners
    )
    print(f"\nbooking race outcomes: {dict(kinds)}")


def _days(first: date, count: int) -> list[date]:
    days, day = [], first
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def test_fifty_reschedules_race_for_one_slot(world: World) -> None:
    hours = [f"{h:02d}:{m:02d}" for h in (9, 10, 11, 12, 14, 15, 16, 17) for m in (0, 30)]
    mine: list[Appointment] = []
    for day in _days(WED, 4):
        for hhmm in hours:
            if len(mine) < 50:
                mine.append(world.clinic.book(booking(at(day, hhmm), who=len(mine))))
    target = at(date(2026, 12, 9), "10:00")  # the Wednesday after, free for all of them
    jobs = [
        lambda a=a: world.clinic.reschedule(RescheduleAppointment(a.appointment_id, target))
        for a in mine
    ]

    outcomes = _race(jobs)

    kinds = Counter(type(o).__name__ for o in outcomes)
    moved = [o for o in outcomes if isinstance(o, Appointment)]
    assert len(moved) == 1, kinds
    assert all(
        isinstance(o, (Appointment, SlotUnavailable, TemporarilyUnavailable)) for o in outcomes
    ), kinds
    winner = moved[0]
    for before in mine:
        now = world.clinic.get(before.appointment_id)
        if now.appointment_id == winner.appointment_id:
            assert (now.start, now.version) == (target, 2)
        else:
            assert now.snapshot() == before.snapshot()  # still at its old time, version 1
    _assert_cells_match(world)
    print(f"\nreschedule race outcomes: {dict(kinds)}")
