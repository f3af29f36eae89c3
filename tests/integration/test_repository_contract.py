"""One contract, three backends: the Clinic behaves the same on memory, moto and DynamoDB Local.

Every test drives the use cases (not the adapters) and asserts concrete outcomes, so a backend
passes only if no use case can tell it from the in-memory reference.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from adapters.aws.dynamodb.guards import is_guard, owner_tag
from domain.appointment import Appointment, Status
from domain.booking_request import RequestStatus
from domain.cadence import Step
from domain.commands import (
    CancelAppointment,
    ChangeStatus,
    ListByCountryStatus,
    ListDoctorDay,
    RegisterDoctor,
    RescheduleAppointment,
)
from domain.errors import (
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidTransition,
    NotFound,
    PatientDoubleBooked,
    SlotUnavailable,
    TemporarilyUnavailable,
    TimeZoneConflict,
    ValidationError,
    VersionConflict,
)
from domain.schedule import Doctor, WorkingHours
from entrypoints.http_responses import booking_request_json
from tests.integration.aws_world import (
    NOW,
    REGION,
    SANTIAGO,
    THU,
    WED,
    WEEKDAY_HOURS,
    Repositories,
    World,
    all_items,
    at,
    booking,
    fresh_table,
    held_time,
    local_client,
    patient,
    time_of,
)
from tests.support.dynamodb_local import DynamoDBLocal

_DYNAMODB_LOCAL = pytest.param("dynamodb_local", marks=pytest.mark.dynamodb_local)
BACKENDS = ["memory", "moto", _DYNAMODB_LOCAL]
# Tests that only some backends can run are generated for those alone, never skipped.
on_dynamodb_backends = pytest.mark.parametrize("repos", ["moto", _DYNAMODB_LOCAL], indirect=True)
# moto is not safe under concurrent requests (its own FAQ).
on_thread_safe_backends = pytest.mark.parametrize(
    "repos", ["memory", _DYNAMODB_LOCAL], indirect=True
)


@pytest.fixture(params=BACKENDS)
def repos(request: pytest.FixtureRequest) -> Iterator[Repositories]:
    """The storage ports of one backend, on an empty table."""
    if request.param == "memory":
        yield Repositories.memory()
    elif request.param == "moto":
        # An endpoint in the environment (e.g. DynamoDB Local of `make run-aws-local`) would
        # take the calls away from moto.
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            monkeypatch.delenv(name, raising=False)
        with mock_aws():
            client = boto3.client("dynamodb", region_name=REGION)
            yield Repositories.dynamodb(fresh_table(client), client)
    else:
        server: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
        client = local_client(server.endpoint_url, pool=20)
        table = fresh_table(client)
        yield Repositories.dynamodb(table, client)
        client.delete_table(TableName=table)


@pytest.fixture
def world(repos: Repositories) -> World:
    return World(repos)


def _ids(items: list[Appointment]) -> list[str]:
    return [a.appointment_id for a in items]


# --- doctors -------------------------------------------------------------------------------


def test_doctor_put_tells_created_from_replaced_and_round_trips(world: World) -> None:
    doctor, created = world.clinic.register_doctor(
        RegisterDoctor("ana", "Dra. Ana", "CL", WEEKDAY_HOURS, slot_minutes=15)
    )
    assert created
    _, created_again = world.clinic.register_doctor(
        RegisterDoctor("ana", "Dra. Ana Pérez", "CL", {"sat": [["08:00", "12:00"]]})
    )
    assert not created_again
    stored = world.clinic.doctor("ana")
    assert stored == Doctor(
        "demo",
        "ana",
        "Dra. Ana Pérez",
        "CL",
        "America/Santiago",
        WorkingHours.parse({"sat": [["08:00", "12:00"]]}),
        30,
    )
    assert doctor.slot_minutes == 15
    with pytest.raises(NotFound):
        world.clinic.doctor("nobody")


# --- booking -------------------------------------------------------------------------------


def test_book_stores_the_appointment_and_its_event(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00"), minutes=60))
    stored = world.clinic.get(booked.appointment_id)
    assert stored.snapshot() == booked.snapshot()
    assert stored.status is Status.REQUESTED and stored.version == 1
    (event,) = world.repos.outbox.pending(10)
    assert event.type == "AppointmentRequested"
    assert event.appointment_id == booked.appointment_id
    # The clinic travels in the envelope; the published payload is the contract's v1 one.
    assert event.clinic_id == "demo"
    assert dict(event.data) == {k: v for k, v in booked.snapshot().items() if k != "clinic_id"}
    with pytest.raises(NotFound):
        world.clinic.get("0190a000-0000-7000-8000-000000000000")


def test_the_doctors_time_is_taken_once(world: World) -> None:
    world.clinic.book(booking(at(WED, "10:00"), who=1, minutes=60))
    for start, minutes in (("10:00", 30), ("10:30", 30), ("09:30", 60), ("09:00", 120)):
        with pytest.raises(SlotUnavailable):
            world.clinic.book(booking(at(WED, start), who=2, minutes=minutes))
    world.clinic.book(booking(at(WED, "11:00"), who=2))
    world.clinic.book(booking(at(WED, "09:30"), who=3))
    assert world.event_types() == ["AppointmentRequested"] * 3


def test_a_patient_cannot_be_in_two_places(world: World) -> None:
    world.clinic.book(booking(at(WED, "10:00"), who=1))
    # 10:00 in Lima is 12:00 in Santiago that day.
    with pytest.raises(PatientDoubleBooked):
        world.clinic.book(booking(at(WED, "12:00", SANTIAGO), who=1, doctor="matias"))
    world.clinic.book(booking(at(WED, "12:00", SANTIAGO), who=2, doctor="matias"))


def test_the_doctors_conflict_wins_over_the_patients(world: World) -> None:
    world.clinic.book(booking(at(WED, "10:00"), who=1))
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "10:00"), who=1))


def test_the_longest_booking_with_a_key_fits_one_transaction(world: World) -> None:
    # 240 minutes: 48 doctor + 48 patient cells, in one guard item each, in one transaction.
    booked = world.clinic.book(booking(at(WED, "09:00"), minutes=240), idempotency_key="long-1")
    assert booked.duration_minutes == 240
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "12:30"), who=2))
    with pytest.raises(PatientDoubleBooked):
        world.clinic.book(booking(at(WED, "12:20", SANTIAGO), who=1, doctor="matias"))


# --- idempotency ---------------------------------------------------------------------------


def test_the_same_key_and_body_returns_the_first_booking(world: World) -> None:
    first = world.clinic.book(booking(at(WED, "10:00")), idempotency_key="k-1")
    again = world.clinic.book(booking(at(WED, "10:00")), idempotency_key="k-1")
    assert again.appointment_id == first.appointment_id
    assert again.snapshot() == first.snapshot()
    assert world.event_types() == ["AppointmentRequested"]


def test_the_same_key_with_another_body_is_refused(world: World) -> None:
    world.clinic.book(booking(at(WED, "10:00")), idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        world.clinic.book(booking(at(WED, "11:00")), idempotency_key="k-1")
    assert world.event_types() == ["AppointmentRequested"]


def test_a_twin_that_committed_first_is_answered_with_its_booking(world: World) -> None:
    # A booking reads no key before its write: every repeat is a twin that committed first,
    # found out by the write itself.
    twin = world.clinic.book(booking(at(WED, "10:00")), idempotency_key="k-twin")
    # Same slot: the key's failure must be reported, not the cells the twin holds.
    again = world.clinic.book(booking(at(WED, "10:00")), idempotency_key="k-twin")
    assert again.appointment_id == twin.appointment_id
    with pytest.raises(IdempotencyKeyReused):
        world.clinic.book(booking(at(WED, "11:00")), idempotency_key="k-twin")
    assert world.event_types() == ["AppointmentRequested"]


@on_thread_safe_backends
def test_concurrent_twins_book_once(world: World) -> None:
    results: list[str] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def twin() -> None:
        barrier.wait()
        try:
            found = world.clinic.book(booking(at(WED, "10:00")), idempotency_key="k-race")
            results.append(found.appointment_id)
        except BaseException as e:  # collected and checked below
            failures.append(e)

    threads = [threading.Thread(target=twin) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Contention may answer 503 (retry later); it never books twice or answers 409.
    assert all(isinstance(e, TemporarilyUnavailable) for e in failures), failures
    assert results and len(set(results)) == 1
    listed = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED)).items
    assert _ids(listed) == results[:1]


# --- reschedule, status, versions ----------------------------------------------------------


def test_reschedule_frees_the_old_time_and_holds_the_new(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00"), who=1))
    world.clinic.change_status(ChangeStatus(booked.appointment_id, Status.CONFIRMED))
    moved = world.clinic.reschedule(
        RescheduleAppointment(booked.appointment_id, at(WED, "12:00"), 60, expected_version=2)
    )
    assert (moved.version, moved.status, moved.duration_minutes) == (3, Status.REQUESTED, 60)
    assert world.clinic.get(booked.appointment_id).snapshot() == moved.snapshot()
    world.clinic.book(booking(at(WED, "10:00"), who=2))
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "12:30"), who=3))
    # 12:00-13:00 in Lima is 14:00-15:00 in Santiago.
    with pytest.raises(PatientDoubleBooked):
        world.clinic.book(booking(at(WED, "14:20", SANTIAGO), who=1, doctor="matias"))
    assert world.event_types(booked.appointment_id) == [
        "AppointmentRequested",
        "AppointmentConfirmed",
        "AppointmentRescheduled",
    ]


def test_reschedule_onto_its_own_time_keeps_the_shared_cells(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00"), minutes=60))
    world.clinic.reschedule(RescheduleAppointment(booked.appointment_id, at(WED, "10:30")))
    world.clinic.book(booking(at(WED, "10:00"), who=2))
    for start in ("10:30", "11:00"):
        with pytest.raises(SlotUnavailable):
            world.clinic.book(booking(at(WED, start), who=3))


def test_reschedule_into_a_taken_time_changes_nothing(world: World) -> None:
    mine = world.clinic.book(booking(at(WED, "10:00"), who=1))
    world.clinic.book(booking(at(WED, "11:00"), who=2))
    with pytest.raises(SlotUnavailable):
        world.clinic.reschedule(RescheduleAppointment(mine.appointment_id, at(WED, "11:00")))
    assert world.clinic.get(mine.appointment_id).snapshot() == mine.snapshot()
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "10:00"), who=3))
    world.clinic.book(booking(at(WED, "14:00", SANTIAGO), who=1, doctor="matias"))
    with pytest.raises(PatientDoubleBooked):
        world.clinic.reschedule(RescheduleAppointment(mine.appointment_id, at(WED, "12:00")))


def test_a_long_move_to_a_disjoint_time_frees_every_old_cell(world: World) -> None:
    # 240 minutes moved to another day: 96 cells freed and 96 taken, in one transaction.
    booked = world.clinic.book(booking(at(WED, "09:00"), minutes=240))
    world.clinic.reschedule(RescheduleAppointment(booked.appointment_id, at(THU, "09:00")))
    for n, start in enumerate(("09:00", "10:30", "12:30"), start=2):
        world.clinic.book(booking(at(WED, start), who=n))
    world.clinic.book(booking(at(WED, "11:00", SANTIAGO), who=1, doctor="matias"))
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(THU, "12:30"), who=9))
    cancelled = world.clinic.cancel(CancelAppointment(booked.appointment_id))
    assert cancelled.status is Status.CANCELLED
    world.clinic.book(booking(at(THU, "09:00"), who=9, minutes=240))


def test_status_changes_count_versions_and_follow_the_machine(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00")))
    aid = booked.appointment_id
    confirmed = world.clinic.change_status(ChangeStatus(aid, Status.CONFIRMED, expected_version=1))
    assert (confirmed.status, confirmed.version) == (Status.CONFIRMED, 2)
    with pytest.raises(InvalidTransition):
        world.clinic.change_status(ChangeStatus(aid, Status.COMPLETED))
    world.clock.set(at(WED, "10:10"))
    done = world.clinic.change_status(ChangeStatus(aid, Status.COMPLETED, "atendido"))
    assert (done.status, done.version) == (Status.COMPLETED, 3)
    assert world.clinic.get(aid).snapshot() == done.snapshot()
    with pytest.raises(InvalidTransition):
        world.clinic.cancel(CancelAppointment(aid))
    # A completed visit holds no time any more (its cells were released).
    assert world.event_types(aid)[-1] == "AppointmentCompleted"


def test_if_match_conflicts_change_nothing(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00")))
    aid = booked.appointment_id
    world.clinic.change_status(ChangeStatus(aid, Status.CONFIRMED))
    with pytest.raises(VersionConflict) as caught:
        world.clinic.reschedule(RescheduleAppointment(aid, at(WED, "11:00"), expected_version=1))
    assert dict(caught.value.details) == {"expected": 1, "actual": 2}
    with pytest.raises(VersionConflict):
        world.clinic.change_status(ChangeStatus(aid, Status.CANCELLED, expected_version=1))
    with pytest.raises(VersionConflict):
        world.clinic.cancel(CancelAppointment(aid, expected_version=3))
    assert world.clinic.get(aid).version == 2
    world.clinic.book(booking(at(WED, "11:00"), who=2))


def test_a_stale_update_is_a_version_conflict_with_the_stored_version(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00")))
    stale = world.clinic.get(booked.appointment_id)
    world.clinic.change_status(ChangeStatus(booked.appointment_id, Status.CONFIRMED))
    previous = stale.copy()
    stale.transition(Status.CANCELLED, now=NOW, event_id="0190a000-0000-7000-8000-00000000000a")
    with pytest.raises(VersionConflict) as caught:
        world.repos.appointments.update(previous, stale)
    assert dict(caught.value.details) == {"expected": 1, "actual": 2}
    # The lost update freed nothing.
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "10:00"), who=2))
    missing = Appointment.from_snapshot(
        {**booked.snapshot(), "appointment_id": "0190a000-0000-7000-8000-00000000000b"}
    )
    with pytest.raises(VersionConflict):
        world.repos.appointments.update(missing, missing.copy())


def test_cancel_frees_the_time_and_is_repeatable(world: World) -> None:
    booked = world.clinic.book(booking(at(WED, "10:00")))
    cancelled = world.clinic.cancel(CancelAppointment(booked.appointment_id, "viaje"))
    assert (cancelled.status, cancelled.version) == (Status.CANCELLED, 2)
    again = world.clinic.cancel(CancelAppointment(booked.appointment_id, expected_version=2))
    assert again.snapshot() == cancelled.snapshot()
    world.clinic.book(booking(at(WED, "10:00"), who=2))
    assert world.event_types(booked.appointment_id) == [
        "AppointmentRequested",
        "AppointmentCancelled",
    ]


# --- lists ---------------------------------------------------------------------------------


def _book_day(world: World) -> list[str]:
    times = ("15:30", "09:00", "11:00", "10:00", "17:30")
    ids = {
        t: world.clinic.book(booking(at(WED, t), who=n)).appointment_id for n, t in enumerate(times)
    }
    return [ids[t] for t in sorted(times)]


def test_doctor_day_pages_chain_and_end_without_a_token(world: World) -> None:
    expected = _book_day(world)
    world.clinic.book(booking(at(THU, "09:00"), who=9))  # another day
    seen: list[str] = []
    tokens = 0
    token: str | None = None
    while True:
        page = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=2, next_token=token))
        assert len(page.items) <= 2
        seen += _ids(page.items)
        if page.next_token is None:
            break
        token, tokens = page.next_token, tokens + 1
    assert (seen, tokens) == (expected, 2)
    exact = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=5))
    assert (_ids(exact.items), exact.next_token) == (expected, None)
    short = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=4))
    assert _ids(short.items) == expected[:4] and short.next_token is not None
    last = world.clinic.list_doctor_day(
        ListDoctorDay("rosa", WED, limit=4, next_token=short.next_token)
    )
    assert (_ids(last.items), last.next_token) == (expected[4:], None)
    empty = world.clinic.list_doctor_day(ListDoctorDay("matias", WED))
    assert (empty.items, empty.next_token) == ([], None)


def test_country_status_lists_bound_start_in_from_to(world: World) -> None:
    expected = _book_day(world)
    world.clinic.change_status(ChangeStatus(expected[0], Status.CONFIRMED))
    chile = world.clinic.book(booking(at(WED, "10:00", SANTIAGO), who=20, doctor="matias"))
    everything = world.clinic.list_by_country_status(ListByCountryStatus("PE", Status.REQUESTED))
    assert _ids(everything.items) == expected[1:]
    bounded = world.clinic.list_by_country_status(
        ListByCountryStatus("PE", Status.REQUESTED, at(WED, "10:00"), at(WED, "15:30"))
    )
    assert _ids(bounded.items) == expected[1:3]  # 10:00 and 11:00; 15:30 is excluded
    since = world.clinic.list_by_country_status(
        ListByCountryStatus("PE", Status.REQUESTED, start_from=at(WED, "11:00"))
    )
    assert _ids(since.items) == expected[2:]
    until = world.clinic.list_by_country_status(
        ListByCountryStatus("PE", Status.REQUESTED, start_to=at(WED, "11:00"))
    )
    assert _ids(until.items) == expected[1:2]
    same = world.clinic.list_by_country_status(
        ListByCountryStatus("PE", Status.REQUESTED, at(WED, "11:00"), at(WED, "11:00"))
    )
    assert same.items == []
    confirmed = world.clinic.list_by_country_status(ListByCountryStatus("PE", Status.CONFIRMED))
    assert _ids(confirmed.items) == expected[:1]
    chilean = world.clinic.list_by_country_status(ListByCountryStatus("CL", Status.REQUESTED))
    assert _ids(chilean.items) == [chile.appointment_id]
    paged: list[str] = []
    token: str | None = None
    while True:
        page = world.clinic.list_by_country_status(
            ListByCountryStatus("PE", Status.REQUESTED, limit=3, next_token=token)
        )
        paged += _ids(page.items)
        if (token := page.next_token) is None:
            break
    assert paged == expected[1:]


def _tamper(token: str, change: Any) -> str:
    """The token with its cursor changed and its old MAC (`<payload>.<mac>`)."""
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["c"] = change(payload["c"])
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + mac


@pytest.mark.parametrize(
    "change",
    [
        lambda c: {k: "x" for k in c},
        lambda c: {**c, "extra": "1"},
        lambda c: dict(list(c.items())[:1]),
        lambda c: {k: 7 for k in c},
        lambda c: ["not", "a", "mapping"],
    ],
    ids=["garbage", "extra-key", "missing-key", "numbers", "list"],
)
def test_a_tampered_token_is_a_validation_error(world: World, change: Any) -> None:
    _book_day(world)
    page = world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=2))
    assert page.next_token is not None
    tampered = _tamper(page.next_token, change)
    with pytest.raises(ValidationError):
        world.clinic.list_doctor_day(ListDoctorDay("rosa", WED, limit=2, next_token=tampered))
    with pytest.raises(ValidationError):  # a token of another query
        world.clinic.list_doctor_day(
            ListDoctorDay("rosa", THU, limit=2, next_token=page.next_token)
        )


def test_availability_leaves_out_booked_slots(world: World) -> None:
    world.clinic.book(booking(at(WED, "10:00"), minutes=60))
    starts = {s.start for s in world.clinic.availability("rosa", WED).slots}
    assert at(WED, "09:30") in starts and at(WED, "11:00") in starts
    assert at(WED, "10:00") not in starts and at(WED, "10:30") not in starts


# --- reminders -----------------------------------------------------------------------------


def test_reminders_are_recorded_once_per_start(world: World) -> None:
    booked = world.clinic.book(booking(at(THU, "10:00")))
    assert world.clinic.run_cadence() == []
    world.clock.set(at(WED, "10:05"))
    (reminded,) = world.clinic.run_cadence()
    assert reminded.appointment_id == booked.appointment_id
    assert world.clinic.run_cadence() == []
    stored = world.clinic.get(booked.appointment_id)
    assert stored.version == 1 and stored.cadence_start == at(THU, "10:00")
    assert stored.sent_steps == {Step.AT_RISK_24H} and stored.at_risk
    # The step does not bump the version, so an If-Match taken before it still works.
    confirmed = world.clinic.change_status(
        ChangeStatus(booked.appointment_id, Status.CONFIRMED, expected_version=1)
    )
    stored = world.clinic.get(booked.appointment_id)
    assert stored.cadence_start == at(THU, "10:00") and not stored.at_risk
    assert confirmed.sent_steps == {Step.AT_RISK_24H}
    # The day-before reminder went with the at-risk message: no second one once confirmed.
    assert world.clinic.run_cadence() == []
    assert world.event_types(booked.appointment_id) == [
        "AppointmentRequested",
        "AppointmentAtRisk",
        "AppointmentConfirmed",
    ]


def test_record_cadence_refuses_a_moved_version(world: World) -> None:
    booked = world.clinic.book(booking(at(THU, "10:00")))
    stale = world.clinic.get(booked.appointment_id)
    world.clinic.change_status(ChangeStatus(booked.appointment_id, Status.CONFIRMED))
    previous = stale.copy()
    stale.record_step(Step.AT_RISK_24H, now=NOW, event_id="0190a000-0000-7000-8000-00000000000c")
    assert not world.repos.appointments.record_cadence(previous, stale)
    assert world.event_types(booked.appointment_id)[-1] == "AppointmentConfirmed"
    assert not world.clinic.get(booked.appointment_id).at_risk


def test_record_cadence_refuses_a_step_already_recorded(world: World) -> None:
    booked = world.clinic.book(booking(at(THU, "10:00")))
    first = world.clinic.get(booked.appointment_id)
    second = first.copy()
    for n, copy in enumerate((first, second)):
        previous = copy.copy()
        copy.record_step(Step.ASK_48H, now=NOW, event_id=f"0190a000-0000-7000-8000-00000000001{n}")
        assert world.repos.appointments.record_cadence(previous, copy) is (n == 0)
    assert world.event_types(booked.appointment_id).count("ConfirmationRequested") == 1


def test_the_at_risk_list_pages_exactly_like_the_full_list_filtered(world: World) -> None:
    booked = [
        world.clinic.book(booking(at(THU, hhmm), who=n))
        for n, hhmm in enumerate(("09:00", "09:30", "10:00", "10:30", "11:00"), start=1)
    ]
    # Two of the five at risk, apart in the list: pages of 1 must skip the others.
    for appointment in (booked[1], booked[3]):
        stored = world.clinic.get(appointment.appointment_id)
        previous = stored.copy()
        stored.record_step(
            Step.AT_RISK_24H, now=NOW, event_id=f"{appointment.appointment_id[:-1]}f"
        )
        assert world.repos.appointments.record_cadence(previous, stored)
    seen, token = [], None
    while True:
        page = world.clinic.list_by_country_status(
            ListByCountryStatus("PE", Status.REQUESTED, limit=1, next_token=token, at_risk=True)
        )
        seen.extend(a.appointment_id for a in page.items)
        token = page.next_token
        if token is None:
            break
    assert seen == [booked[1].appointment_id, booked[3].appointment_id]
    everything = world.clinic.list_by_country_status(ListByCountryStatus("PE", Status.REQUESTED))
    assert [a.at_risk for a in everything.items] == [False, True, False, True, False]


# --- booking requests ----------------------------------------------------------------------


def test_booking_requests_end_booked_or_rejected(world: World) -> None:
    first = world.clinic.request_booking(booking(at(WED, "10:00"), who=1))
    second = world.clinic.request_booking(booking(at(WED, "10:00"), who=2))
    assert booking_request_json(world.clinic.booking_request(first.request_id)) == {
        "request_id": first.request_id,
        "status": "pending",
    }
    assert world.queue.take("PE", 0) == first.request_id
    assert world.queue.take("PE", 0) == second.request_id

    booked = world.clinic.process_booking_request(first.request_id)
    assert booked.status is RequestStatus.BOOKED and booked.appointment_id
    rejected = world.clinic.process_booking_request(second.request_id)
    assert rejected.status is RequestStatus.REJECTED
    assert booking_request_json(rejected)["error"]["code"] == "slot_unavailable"
    # A replay changes nothing.
    again = world.clinic.process_booking_request(first.request_id)
    assert booking_request_json(again) == booking_request_json(booked)
    stored = world.clinic.booking_request(second.request_id)
    assert booking_request_json(stored) == booking_request_json(rejected)
    assert stored.command == second.command
    assert stored.created_at == second.created_at
    assert world.event_types() == ["AppointmentRequested", "BookingRequestRejected"]
    with pytest.raises(NotFound):
        world.clinic.booking_request("0190a000-0000-7000-8000-00000000000d")


def test_an_outcome_is_stored_only_over_a_pending_request(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "10:00")))
    done = world.clinic.process_booking_request(request.request_id)
    late = world.clinic.booking_request(request.request_id)
    late.rejected(SlotUnavailable("late"), NOW, "0190a000-0000-7000-8000-00000000000e")
    world.repos.requests.save(late)
    assert booking_request_json(
        world.clinic.booking_request(request.request_id)
    ) == booking_request_json(done)
    assert "BookingRequestRejected" not in world.event_types()


# --- outbox --------------------------------------------------------------------------------


def test_outbox_lists_pending_events_in_commit_order_and_forgets_removed(world: World) -> None:
    a = world.clinic.book(booking(at(WED, "10:00"), who=1))
    b = world.clinic.book(booking(at(WED, "11:00"), who=2))
    world.clinic.change_status(ChangeStatus(a.appointment_id, Status.CONFIRMED))
    world.clinic.cancel(CancelAppointment(b.appointment_id))
    pending = world.repos.outbox.pending(10)
    assert [(e.type, e.appointment_id) for e in pending] == [
        ("AppointmentRequested", a.appointment_id),
        ("AppointmentRequested", b.appointment_id),
        ("AppointmentConfirmed", a.appointment_id),
        ("AppointmentCancelled", b.appointment_id),
    ]
    assert [e.version for e in pending] == [1, 1, 2, 2]
    assert world.repos.outbox.pending(2) == pending[:2]
    world.repos.outbox.remove([pending[0].event_id, pending[1].event_id, pending[0].event_id])
    world.repos.outbox.remove(["0190a000-0000-7000-8000-00000000000f"])
    assert world.repos.outbox.pending(10) == pending[2:]
    world.repos.outbox.remove([e.event_id for e in pending])
    assert world.repos.outbox.pending(10) == []


def test_the_outbox_removes_more_than_one_batch(world: World) -> None:
    for n, start in enumerate(("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")):
        aid = world.clinic.book(booking(at(WED, start), who=n)).appointment_id
        world.clinic.change_status(ChangeStatus(aid, Status.CONFIRMED))
        world.clinic.cancel(CancelAppointment(aid))
    for n in range(3):
        aid = world.clinic.book(booking(at(THU, "09:00"), who=n)).appointment_id
        world.clinic.cancel(CancelAppointment(aid))
    pending = world.repos.outbox.pending(100)
    assert len(pending) == 24
    world.repos.outbox.remove([e.event_id for e in pending[:-1]])
    assert world.repos.outbox.pending(100) == pending[-1:]


# --- what only the DynamoDB backends can show: the items themselves --------------------------


def _dynamo(world: World) -> tuple[Any, str]:
    assert world.repos.client is not None, "only for the DynamoDB backends"
    return world.repos.client, world.repos.table


def _cells_of(world: World) -> dict[str, str]:
    client, table = _dynamo(world)
    return held_time(client, table)


@on_dynamodb_backends
def test_cells_follow_the_appointment_exactly(world: World) -> None:
    _dynamo(world)
    booked = world.clinic.book(booking(at(WED, "10:00"), minutes=60))
    aid = booked.appointment_id
    key = patient(1).key
    wanted = {
        f"{who}#2026-12-02T15:{m:02d}Z"
        for who in ("demo#DOC#rosa", f"demo#PAT#{key}")
        for m in range(0, 60, 5)
    }
    assert _cells_of(world) == dict.fromkeys(wanted, owner_tag(aid))
    world.clinic.reschedule(RescheduleAppointment(aid, at(WED, "10:30"), 30))
    assert set(_cells_of(world)) == {
        f"{who}#2026-12-02T15:{m:02d}Z"
        for who in ("demo#DOC#rosa", f"demo#PAT#{key}")
        for m in range(30, 60, 5)
    }
    world.clinic.cancel(CancelAppointment(aid))
    assert _cells_of(world) == {}


def _guards(world: World) -> set[str]:
    client, table = _dynamo(world)
    return {str(i["pk"]) for i in all_items(client, table) if is_guard(str(i["pk"]))}


@on_dynamodb_backends
def test_an_evening_visit_across_midnight_utc_holds_one_guard_per_party(world: World) -> None:
    # 18:00-20:00 in Lima is 23:00-01:00 UTC: one guard day (it begins at 06:00 UTC).
    evening = {d: [["09:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    world.clinic.register_doctor(RegisterDoctor("tarde", "Dr. Tarde", "PE", evening))
    world.clinic.register_doctor(RegisterDoctor("noche", "Dra. Noche", "PE", evening))
    booked = world.clinic.book(booking(at(WED, "18:00"), minutes=120, doctor="tarde"))
    key = patient(1).key
    assert _guards(world) == {"demo#DOCDAY#tarde#2026-12-02", f"demo#PATDAY#{key}#2026-12-02"}
    assert _cells_of(world) == time_of(booked)
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "19:30"), who=2, doctor="tarde"))
    with pytest.raises(PatientDoubleBooked):
        world.clinic.book(booking(at(WED, "19:30"), who=1, doctor="noche"))
    world.clinic.cancel(CancelAppointment(booked.appointment_id))
    assert _cells_of(world) == {}
    world.clinic.book(booking(at(WED, "19:30"), who=2, doctor="tarde"))


@on_dynamodb_backends
def test_a_night_visit_across_0600_utc_holds_two_guard_days_of_each_party(world: World) -> None:
    # 00:30-01:30 in Lima is 05:30-06:30 UTC: the end of Tuesday's guard day, Wednesday's start.
    night = {d: [["00:00", "03:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    world.clinic.register_doctor(RegisterDoctor("guardia", "Dr. Guardia", "PE", night))
    world.clinic.register_doctor(RegisterDoctor("reten", "Dra. Retén", "PE", night))
    booked = world.clinic.book(booking(at(WED, "00:30"), minutes=60, doctor="guardia"))
    key = patient(1).key
    assert _guards(world) == {
        "demo#DOCDAY#guardia#2026-12-01",
        "demo#DOCDAY#guardia#2026-12-02",
        f"demo#PATDAY#{key}#2026-12-01",
        f"demo#PATDAY#{key}#2026-12-02",
    }
    assert _cells_of(world) == time_of(booked)
    for start in ("00:00", "01:00"):  # an hour that overlaps it in one guard day each
        with pytest.raises(SlotUnavailable):
            world.clinic.book(booking(at(WED, start), who=2, doctor="guardia", minutes=60))
        with pytest.raises(PatientDoubleBooked):
            world.clinic.book(booking(at(WED, start), who=1, doctor="reten", minutes=60))
    moved = world.clinic.reschedule(RescheduleAppointment(booked.appointment_id, at(THU, "00:30")))
    assert _cells_of(world) == time_of(moved)
    world.clinic.book(booking(at(WED, "00:30"), who=2, doctor="guardia"))


@on_dynamodb_backends
def test_items_carry_ttls_and_never_the_phone(world: World) -> None:
    client, table = _dynamo(world)
    booked = world.clinic.book(booking(at(WED, "10:00")), idempotency_key="ttl-1")
    items = {str(i["pk"]): i for i in all_items(client, table)}
    guard = items["demo#DOCDAY#rosa#2026-12-02"]
    # The guard day's end (Thursday 06:00 UTC) + 1 day.
    assert int(guard["expires_at"]) == int(datetime(2026, 12, 4, 6, tzinfo=UTC).timestamp())
    assert guard["1525"] == owner_tag(booked.appointment_id)
    idem = items["demo#IDEM#ttl-1"]
    assert int(idem["expires_at"]) == int(NOW.timestamp()) + 86400
    assert idem["appointment_id"] == booked.appointment_id
    (event,) = [i for pk, i in items.items() if pk.startswith("OUTBOX#")]
    assert (int(event["outbox"]), event["gsi1pk"]) == (1, "OUTBOX")
    appointment = items[f"demo#APPT#{booked.appointment_id}"]
    assert appointment["gsi1pk"] == "demo#DOCTOR#rosa"
    assert appointment["gsi2pk"] == "demo#COUNTRY#PE#STATUS#requested"
    assert appointment["gsi1sk"] == f"2026-12-02T15:00:00.000000Z#{booked.appointment_id}"
    phone = patient(1).phone
    assert not any(phone in str(i["pk"]) for i in items.values())
    # Only appointments and outbox events are in an index: guards cost no index writes.
    # A clinic's key names its kind after the clinic; the outbox is the deployment's own.
    indexed = {
        pk.removeprefix("demo#").split("#")[0]
        for pk, i in items.items()
        if "gsi1pk" in i or "gsi2pk" in i
    }
    assert indexed == {"APPT", "OUTBOX"}


@on_dynamodb_backends
def test_a_cursor_of_another_doctor_is_refused(world: World) -> None:
    _dynamo(world)
    _book_day(world)
    page = world.repos.appointments.list_by_doctor("rosa", NOW, NOW + _DAYS, 2, None)
    assert page.cursor is not None
    with pytest.raises(InvalidCursor):
        world.repos.appointments.list_by_doctor("matias", NOW, NOW + _DAYS, 2, page.cursor)
    outside = {**page.cursor}
    with pytest.raises(InvalidCursor):
        world.repos.appointments.list_by_doctor("rosa", NOW + _DAYS, NOW + 2 * _DAYS, 2, outside)
    swapped = {**page.cursor, "pk": "demo#APPT#someone-else"}
    with pytest.raises(InvalidCursor):
        world.repos.appointments.list_by_doctor("rosa", NOW, NOW + _DAYS, 2, swapped)
    json.dumps(page.cursor)  # JSON-able, as the token needs


_DAYS = timedelta(days=3)


@on_dynamodb_backends
def test_adding_a_request_twice_is_harmless_but_a_clash_is_not(world: World) -> None:
    _dynamo(world)
    request = world.clinic.request_booking(booking(at(WED, "10:00")))
    # What botocore does when the answer to the first put was lost: the same put again.
    world.repos.requests.add(request)
    other = world.clinic.booking_request(request.request_id)
    other.country = "CL"
    with pytest.raises(ValueError, match="already exists"):
        world.repos.requests.add(other)
    assert world.clinic.booking_request(request.request_id).country == "PE"


def test_an_update_keeps_a_cadence_step_recorded_after_its_read(world: World) -> None:
    # The reminder keeps the version, so a confirm read before it still commits; it must
    # not write back the stale "no reminder yet".
    booked = world.clinic.book(booking(at(THU, "10:00")))
    read_before = world.clinic.get(booked.appointment_id)
    world.clock.set(at(WED, "10:05"))
    assert len(world.clinic.run_cadence()) == 1
    previous = read_before.copy()
    read_before.transition(
        Status.CONFIRMED, now=NOW, event_id="0190a000-0000-7000-8000-0000000000c1"
    )
    world.repos.appointments.update(previous, read_before)
    stored = world.clinic.get(booked.appointment_id)
    assert (stored.status, stored.cadence_start) == (Status.CONFIRMED, at(THU, "10:00"))
    assert stored.sent_steps == {Step.AT_RISK_24H}
    # The confirmation clears the flag the cadence set after it was read.
    assert not stored.at_risk
    assert world.clinic.run_cadence() == []


# --- hostile input that reaches storage ----------------------------------------------------


def test_a_doctors_zone_cannot_change_under_active_appointments(world: World) -> None:
    hours = WEEKDAY_HOURS
    booked = world.clinic.book(booking(at(WED, "10:00")))
    moved = RegisterDoctor("rosa", "Dra. Rosa Quispe", "PE", hours, time_zone="America/Bogota")
    with pytest.raises(TimeZoneConflict) as refused:
        world.clinic.register_doctor(moved)
    assert refused.value.details["appointment_ids"] == [booked.appointment_id]
    assert world.clinic.doctor("rosa").time_zone == "America/Lima"
    # The same zone replaces without a look; with nothing active left, the zone may change.
    same = RegisterDoctor("rosa", "Dra. Rosa Q.", "PE", hours, time_zone="America/Lima")
    assert world.clinic.register_doctor(same)[1] is False
    world.clinic.cancel(CancelAppointment(booked.appointment_id))
    doctor, created = world.clinic.register_doctor(moved)
    assert (doctor.time_zone, created) == ("America/Bogota", False)
    assert world.clinic.doctor("rosa").time_zone == "America/Bogota"


def test_a_client_idempotency_key_never_meets_the_workers_key(world: World) -> None:
    request = world.clinic.request_booking(booking(at(WED, "10:00"), who=1))
    world.clinic.book(
        booking(at(WED, "11:00"), who=2), idempotency_key=f"request:{request.request_id}"
    )
    done = world.clinic.process_booking_request(request.request_id)
    assert done.status is RequestStatus.BOOKED, done.error
