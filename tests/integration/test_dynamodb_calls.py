"""What each use case costs in DynamoDB calls, counted with botocore's event hooks.

Every write of a use case is exactly one `TransactWriteItems` (all or nothing in one round
trip); reads are strongly consistent `GetItem`s of single items (a doctor's schedule, time
off included, is its profile item); a list page is one `Query`; nothing ever Scans.
A container keeps each doctor's schedule once read: a warm booking is that one transaction,
which checks the schedule version it was judged against.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.dynamodb.guards import owner_tag
from domain.appointment import Status
from domain.commands import (
    CancelAppointment,
    ChangeStatus,
    ListByCountryStatus,
    ListDoctorDay,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.errors import SlotUnavailable, TimeZoneConflict
from tests.integration.aws_world import (
    THU,
    WED,
    WEEKDAY_HOURS,
    Repositories,
    World,
    at,
    booking,
    fresh_table,
    held_time,
    local_client,
    time_of,
)
from tests.support.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.dynamodb_local

ADAPTERS = Path(__file__).resolve().parents[2] / "adapters"


class Calls:
    """Counts DynamoDB operations (and transaction sizes) made through one client."""

    def __init__(self) -> None:
        self.operations: Counter[str] = Counter()
        self.transaction_sizes: list[int] = []

    def count(self, model: Any, **_: Any) -> None:
        """`before-call`: once per API call (botocore's own retries are not calls)."""
        self.operations[model.name] += 1

    def measure(self, params: dict[str, Any], **_: Any) -> None:
        """`provide-client-params`: the call's API parameters."""
        self.transaction_sizes.append(len(params["TransactItems"]))

    def take(self) -> dict[str, int]:
        """The counts since the last take, then start again."""
        counted = dict(self.operations)
        self.operations.clear()
        return counted


@pytest.fixture
def counted(dynamodb_local: DynamoDBLocal) -> Iterator[tuple[World, Calls]]:
    client = local_client(dynamodb_local.endpoint_url)
    table = fresh_table(client)
    world = World(Repositories.dynamodb(table, client))
    calls = Calls()
    client.meta.events.register("before-call.dynamodb.*", calls.count)
    client.meta.events.register("provide-client-params.dynamodb.TransactWriteItems", calls.measure)
    yield world, calls
    client.delete_table(TableName=table)


def test_register_doctor_is_one_update(counted: tuple[World, Calls]) -> None:
    world, calls = counted
    world.clinic.register_doctor(RegisterDoctor("ana", "Dra. Ana", "PE", WEEKDAY_HOURS))
    # One UpdateItem: the profile and its schedule version, bumped in place.
    assert calls.take() == {"UpdateItem": 1}


def test_a_same_zone_replace_stays_one_update_and_only_a_zone_change_looks(
    counted: tuple[World, Calls],
) -> None:
    world, calls = counted
    world.clinic.book(booking(at(WED, "10:00")))
    calls.take()
    hours = WEEKDAY_HOURS
    world.clinic.register_doctor(RegisterDoctor("rosa", "Dra. Rosa Q.", "PE", hours))
    assert calls.take() == {"UpdateItem": 1}
    moved = RegisterDoctor("rosa", "Dra. Rosa Q.", "PE", hours, time_zone="America/Bogota")
    with pytest.raises(TimeZoneConflict):
        world.clinic.register_doctor(moved)
    # The refused conditional update, the doctor, one page of its appointments; nothing written.
    assert calls.take() == {"UpdateItem": 1, "GetItem": 1, "Query": 1}


def test_book_is_one_transaction_once_the_doctor_is_known(counted: tuple[World, Calls]) -> None:
    world, calls = counted
    world.clinic.book(booking(at(WED, "10:00")))
    # Cold: the doctor's schedule (its profile item), then the transaction.
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    world.clinic.book(booking(at(WED, "11:00"), who=2), idempotency_key="k-1")
    # Warm: the transaction alone; the key is one of its items, not a read before it.
    assert calls.take() == {"TransactWriteItems": 1}
    world.clinic.book(booking(at(WED, "11:00"), who=2), idempotency_key="k-1")
    # A replay: the transaction refused on the key, then the key and the appointment it made.
    assert calls.take() == {"TransactWriteItems": 1, "GetItem": 2}
    # 1 appointment + the doctor's schedule check + its day guard + the patient's + 1 event;
    # then the key's 1 more, twice.
    assert calls.transaction_sizes == [5, 6, 6]


def test_the_longest_booking_is_five_items_in_one_call(counted: tuple[World, Calls]) -> None:
    world, calls = counted
    world.clinic.book(booking(at(WED, "09:00"), minutes=240), idempotency_key="long")
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    # 48 cells per party, all in one guard item each: the length costs no items.
    assert calls.transaction_sizes == [6]


def test_a_refused_booking_is_one_call_that_says_who_holds_the_time(
    counted: tuple[World, Calls],
) -> None:
    world, calls = counted
    first = world.clinic.book(booking(at(WED, "10:00"), minutes=60))
    calls.take()
    refusals: list[dict[str, Any]] = []
    client = world.repos.client
    assert client is not None
    client.meta.events.register(
        "after-call.dynamodb.TransactWriteItems",
        lambda parsed, **_: refusals.append(parsed),
    )
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "10:30"), who=2))
    # The refused transaction alone (the doctor is known): no read to find out why.
    assert calls.take() == {"TransactWriteItems": 1}
    reasons = refusals[-1]["CancellationReasons"]
    # The appointment, the schedule check, then the doctor's guard.
    doctor_guard = reasons[2]["Item"]
    assert reasons[2]["Code"] == "ConditionalCheckFailed"
    assert doctor_guard["pk"] == {"S": "demo#DOCDAY#rosa#2026-12-02"}
    assert doctor_guard["1530"] == {"S": owner_tag(first.appointment_id)}


def test_reschedule_cancel_and_status_are_one_transaction_each(
    counted: tuple[World, Calls],
) -> None:
    world, calls = counted
    aid = world.clinic.book(booking(at(WED, "10:00"))).appointment_id
    calls.take()
    calls.transaction_sizes.clear()

    world.clinic.reschedule(RescheduleAppointment(aid, at(WED, "11:00")))
    # The appointment, then the transaction (the doctor's schedule is known).
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    world.clinic.change_status(ChangeStatus(aid, Status.CONFIRMED))
    # The appointment, then the transaction.
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    world.clinic.cancel(CancelAppointment(aid))
    # The appointment, then the transaction.
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    world.clinic.cancel(CancelAppointment(aid))
    # Cancelling a cancelled appointment writes nothing.
    assert calls.take() == {"GetItem": 1}
    # Move: 1 + the schedule check + the two guards (each sets the new cells, removes the
    # old) + 1 event; confirm: 1 + 1 (the time is unchanged); cancel: 1 + the two guards + 1.
    assert calls.transaction_sizes == [5, 2, 4]


@pytest.mark.parametrize(
    ("day", "start", "items"),
    [
        # The same day: each party's one guard item sets 48 cells and removes 48.
        (WED, "14:00", 5),
        # Another day: each party's old guard frees, its new guard takes.
        (THU, "09:00", 7),
    ],
)
def test_a_240_minute_move_to_a_disjoint_time_is_one_small_transaction(
    counted: tuple[World, Calls], day: date, start: str, items: int
) -> None:
    world, calls = counted
    aid = world.clinic.book(booking(at(WED, "09:00"), minutes=240)).appointment_id
    calls.take()
    calls.transaction_sizes.clear()
    moved = world.clinic.reschedule(RescheduleAppointment(aid, at(day, start)))
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    assert calls.transaction_sizes == [items]
    assert items <= 8
    assert held_time(world.repos.client, world.repos.table) == time_of(moved)


def test_the_largest_move_spans_06_00_utc_twice_and_is_ten_items(
    counted: tuple[World, Calls],
) -> None:
    # A guard day begins at 06:00 UTC (01:00 in Lima): a visit across it holds two guard days
    # per party, and a move between two such visits days apart touches four per party.
    world, calls = counted
    night = {d: [["00:00", "03:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    world.clinic.register_doctor(RegisterDoctor("guardia", "Dr. Guardia", "PE", night))
    aid = world.clinic.book(booking(at(WED, "00:30"), minutes=60, doctor="guardia")).appointment_id
    calls.take()
    calls.transaction_sizes.clear()
    moved = world.clinic.reschedule(RescheduleAppointment(aid, at(date(2026, 12, 4), "00:30")))
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1}
    # 1 appointment + 1 schedule check + 1 event + 4 doctor guards + 4 patient guards.
    assert calls.transaction_sizes == [11]
    assert held_time(world.repos.client, world.repos.table) == time_of(moved)


def test_a_list_page_is_one_query(counted: tuple[World, Calls]) -> None:
    world, calls = counted
    for n, hhmm in enumerate(("09:00", "10:00", "11:00")):
        world.clinic.book(booking(at(WED, hhmm), who=n))
    calls.take()
    page = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=2))
    # The doctor (for its time zone), then one Query.
    assert calls.take() == {"GetItem": 1, "Query": 1}
    world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=2, next_token=page.next_token))
    assert calls.take() == {"GetItem": 1, "Query": 1}
    world.clinic.list_by_country_status(ListByCountryStatus("PE", Status.REQUESTED, limit=2))
    assert calls.take() == {"Query": 1}
    world.clinic.availability("rosa", WED)
    # The doctor's schedule read fresh (a person reads it), then the day's appointments.
    assert calls.take() == {"GetItem": 1, "Query": 1}


def test_reminders_outbox_and_requests(counted: tuple[World, Calls]) -> None:
    world, calls = counted
    world.clinic.book(booking(at(THU, "10:00")))
    calls.take()
    world.clock.set(at(WED, "10:05"))
    assert len(world.clinic.run_cadence()) == 1
    # One Query per country and active status (2 x 2), one transaction per reminder.
    assert calls.take() == {"Query": 4, "TransactWriteItems": 1}

    events = world.repos.outbox.pending(10)
    assert calls.take() == {"Query": 1}
    world.repos.outbox.remove([e.event_id for e in events])
    assert calls.take() == {"BatchWriteItem": 1}

    request = world.clinic.request_booking(booking(at(WED, "15:00"), who=3))
    # The doctor's country comes from the known schedule: the request's put alone.
    assert calls.take() == {"PutItem": 1}
    world.clinic.process_booking_request(request.request_id)
    # The request; the booking (its key inside); then the outcome (no event: a put).
    assert calls.take() == {"GetItem": 1, "TransactWriteItems": 1, "PutItem": 1}


_SCAN = re.compile(r"""\.scan\(|["']Scan["']|get_paginator\(\s*["']scan["']""")


# An operator's one-off pass over the whole table: never on a request path, not in the zip.
ADMIN_TOOLS = {"adapters/aws/migrate.py"}


def test_no_adapter_ever_scans() -> None:
    offenders = [
        f"{path.relative_to(ADAPTERS.parent)}:{n}"
        for path in sorted(ADAPTERS.rglob("*.py"))
        if str(path.relative_to(ADAPTERS.parent)) not in ADMIN_TOOLS
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if _SCAN.search(line)
    ]
    assert offenders == []


def test_the_admin_tools_left_out_really_scan() -> None:
    # The Lambda package test checks that they stay out of the zip.
    for tool in ADMIN_TOOLS:
        assert _SCAN.search((ADAPTERS.parent / tool).read_text())


def test_the_scan_detector_sees_a_scan() -> None:
    assert _SCAN.search("client.scan(TableName=t)")
    assert _SCAN.search('client.get_paginator("scan")')
    assert not _SCAN.search("# lists pending events without a Scan")
