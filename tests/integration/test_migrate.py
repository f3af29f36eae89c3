"""`citas migrate` on DynamoDB Local: a table of the per-cell release becomes a day-guard table.

The legacy layout is written here by hand, the way releases before the day guards wrote it:
one `DOCSLOT#<doctor>#<cell>` / `PATSLOT#<patient key>#<cell>` item (sort key `LOCK`) per
5-minute cell of every active appointment, sometimes an orphan cell of a cancelled one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.aws.dynamodb.guards import GUARD_SK, doctor_guard_pk, is_guard, owner_tag
from adapters.aws.dynamodb.items import appointment_to_item, attribute_values
from adapters.aws.migrate import EXIT_CONFLICT, EXIT_OK, migrate
from domain.appointment import Appointment
from domain.commands import CancelAppointment
from domain.errors import PatientDoubleBooked, SlotUnavailable
from entrypoints.local import cli
from tests.integration.aws_world import (
    NOW,
    REGION,
    SANTIAGO,
    THU,
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


@pytest.fixture
def world(dynamodb_local: DynamoDBLocal) -> Iterator[World]:
    client = local_client(dynamodb_local.endpoint_url)
    table = fresh_table(client)
    yield World(Repositories.dynamodb(table, client))
    client.delete_table(TableName=table)


def _client(world: World) -> DynamoDBClient:
    assert world.repos.client is not None
    return world.repos.client


def _legacy_cells(world: World, appointment: Appointment) -> None:
    """The cell items the per-cell release wrote for `appointment`."""
    cells = [
        f"DOCSLOT#{appointment.doctor_id}#{c:%Y-%m-%dT%H:%MZ}" for c in appointment.doctor_cells()
    ]
    cells += [
        f"PATSLOT#{appointment.patient.key}#{c:%Y-%m-%dT%H:%MZ}"
        for c in appointment.patient_cells()
    ]
    for pk in cells:
        _client(world).put_item(
            TableName=world.repos.table,
            Item={
                "pk": {"S": pk},
                "sk": {"S": "LOCK"},
                "appointment_id": {"S": appointment.appointment_id},
                "expires_at": {"N": str(int((appointment.end + timedelta(days=1)).timestamp()))},
            },
        )


def _to_legacy_layout(world: World, active: list[Appointment]) -> None:
    """Drop every day guard and write the old cells of `active` instead."""
    for item in all_items(_client(world), world.repos.table):
        if is_guard(str(item["pk"])):
            key = {"pk": {"S": str(item["pk"])}, "sk": {"S": GUARD_SK}}
            _client(world).delete_item(TableName=world.repos.table, Key=key)
    for appointment in active:
        _legacy_cells(world, appointment)


def _legacy_items(world: World) -> list[str]:
    return [str(i["pk"]) for i in all_items(_client(world), world.repos.table) if i["sk"] == "LOCK"]


@pytest.fixture
def legacy(world: World) -> dict[str, Appointment]:
    """Three active appointments (one of 240 minutes) and a cancelled one, in the old layout."""
    booked = {
        "ten": world.clinic.book(booking(at(WED, "10:00"), who=1, minutes=60)),
        "eleven": world.clinic.book(booking(at(WED, "11:00"), who=2)),
        "long": world.clinic.book(booking(at(THU, "09:00"), who=3, minutes=240)),
    }
    gone = world.clinic.book(booking(at(WED, "12:00"), who=4))
    world.clinic.cancel(CancelAppointment(gone.appointment_id))
    _to_legacy_layout(world, list(booked.values()))
    # An orphan of the old release: a cell its cancellation failed to free.
    _legacy_cells(world, gone)
    # And a guard cell no appointment needs (12:00 in Lima is 17:00 UTC).
    _client(world).put_item(
        TableName=world.repos.table,
        Item=attribute_values(
            {"pk": doctor_guard_pk("rosa", WED), "sk": GUARD_SK, "1700": "zzzz", "expires_at": 1}
        ),
    )
    return booked


def test_the_migration_rebuilds_the_guards_and_deletes_the_old_cells(
    world: World, legacy: dict[str, Appointment]
) -> None:
    assert len(_legacy_items(world)) == 2 * (12 + 6 + 48) + 2 * 6
    status, report = migrate(_client(world), world.repos.table, NOW)
    assert status == EXIT_OK, report
    assert report["appointments"] == 4
    assert report["active"] == 3
    assert report["cells_to_set"] == 2 * (12 + 6 + 48)
    assert report["cells_to_remove"] == 1
    assert report["legacy_cells_to_delete"] == 2 * (12 + 6 + 48) + 2 * 6
    assert report["conflicts"] == []
    assert _legacy_items(world) == []
    expected: dict[str, str] = {}
    for appointment in legacy.values():
        expected.update(time_of(appointment))
    assert held_time(_client(world), world.repos.table) == expected

    # The guards now refuse what the old cells refused, and free what they held by mistake.
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "10:30"), who=5))
    with pytest.raises(PatientDoubleBooked):
        world.clinic.book(booking(at(THU, "12:20", SANTIAGO), who=3, doctor="matias"))
    world.clinic.book(booking(at(WED, "12:00"), who=6))
    world.clinic.cancel(CancelAppointment(legacy["long"].appointment_id))
    world.clinic.book(booking(at(THU, "10:00"), who=7))


def test_running_it_again_changes_nothing(world: World, legacy: dict[str, Appointment]) -> None:
    migrate(_client(world), world.repos.table, NOW)
    before = all_items(_client(world), world.repos.table)
    status, report = migrate(_client(world), world.repos.table, NOW)
    assert status == EXIT_OK
    assert (report["guards_to_update"], report["legacy_cells_to_delete"]) == (0, 0)
    assert all_items(_client(world), world.repos.table) == before


def test_a_dry_run_reports_and_writes_nothing(world: World, legacy: dict[str, Appointment]) -> None:
    before = all_items(_client(world), world.repos.table)
    status, report = migrate(_client(world), world.repos.table, NOW, dry_run=True)
    assert (status, report["dry_run"], report["cells_to_set"]) == (EXIT_OK, True, 132)
    assert all_items(_client(world), world.repos.table) == before


def test_appointments_past_their_guards_ttl_need_no_guard(
    world: World, legacy: dict[str, Appointment]
) -> None:
    # Friday noon UTC: Wednesday's guards have expired (Friday 06:00), Thursday's have not.
    status, report = migrate(
        _client(world), world.repos.table, datetime(2026, 12, 4, 12, tzinfo=UTC)
    )
    assert status == EXIT_OK
    assert report["active_past_their_guards"] == 2
    assert held_time(_client(world), world.repos.table) == time_of(legacy["long"])


def test_two_active_appointments_on_one_cell_are_reported_and_nothing_is_written(
    world: World, legacy: dict[str, Appointment]
) -> None:
    ten = legacy["ten"]
    # A corrupt table: a second appointment at the same 10:00, for the same doctor and patient.
    twin = Appointment.from_snapshot(
        {**ten.snapshot(), "appointment_id": "01890000-0000-7000-8000-00000000beef"}
    )
    _client(world).put_item(
        TableName=world.repos.table, Item=attribute_values(appointment_to_item(twin))
    )
    before = all_items(_client(world), world.repos.table)
    status, report = migrate(_client(world), world.repos.table, NOW)
    assert status == EXIT_CONFLICT
    assert {frozenset(c["appointment_ids"]) for c in report["conflicts"]} == {
        frozenset({ten.appointment_id, twin.appointment_id})
    }
    assert len(report["conflicts"]) == 2 * 12  # every doctor and patient cell of the visit
    assert all_items(_client(world), world.repos.table) == before


def test_citas_migrate_runs_on_the_configured_endpoint(
    world: World,
    legacy: dict[str, Appointment],
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    assert cli.main(["migrate", "--table", world.repos.table, "--dry-run"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert (report["table"], report["dry_run"], report["active"]) == (world.repos.table, True, 3)
    assert cli.main(["migrate", "--table", world.repos.table]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["legacy_cells_to_delete"] == 144
    assert _legacy_items(world) == []
    # No patient data in what it prints: ids and counts only.
    assert cli.main(["migrate", "--table", world.repos.table]) == EXIT_OK
    printed = capsys.readouterr()
    assert legacy["ten"].patient.phone not in printed.out + printed.err
    assert owner_tag(legacy["ten"].appointment_id) not in printed.out


def test_citas_migrate_says_why_it_cannot_reach_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    assert cli.main(["migrate", "--table", "citas-nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("citas migrate: ")
    assert "Traceback" not in err
