"""`citas migrate` on DynamoDB Local: a table of any earlier release becomes this release's.

The old layouts are written here by hand, the way earlier releases wrote them. Releases before
the day guards: one `DOCSLOT#<doctor>#<cell>` / `PATSLOT#<patient key>#<cell>` item (sort key
`LOCK`) per 5-minute cell of every active appointment, sometimes an orphan cell of a cancelled
one. Releases before clinics (`_before_clinics`): every key bare (`APPT#<id>`, `DOCTOR#<id>`,
`DOCDAY#<doctor>#<day>`, ...), no `clinic_id` attribute, outbox envelopes without `clinic_id`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import attrs
import pytest
from botocore.exceptions import EndpointConnectionError

from adapters.aws.dynamodb import DynamoDBEventOutbox, DynamoDBRepositories
from adapters.aws.dynamodb.guards import GUARD_SK, doctor_guard_pk, is_guard, owner_tag
from adapters.aws.dynamodb.items import appointment_to_item, attribute_values
from adapters.aws.migrate import EXIT_CONFLICT, EXIT_OK, CannotMigrate, migrate
from adapters.system import UuidV7Generator
from domain.appointment import Appointment, Status
from domain.booking_request import BookingRequest, RequestStatus
from domain.commands import CancelAppointment, RegisterDoctor
from domain.countries import CountryCatalog
from domain.errors import PatientDoubleBooked, SlotUnavailable, TemporarilyUnavailable
from domain.schedule import Doctor
from domain.use_cases import Clinic
from entrypoints.local import cli
from ports.repositories import Window
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


def _before_clinics(world: World) -> None:
    """Rewrite every item of clinic `demo` the way releases before clinics stored it."""
    client, table = _client(world), world.repos.table
    for item in all_items(client, table):
        pk, sk = str(item["pk"]), str(item["sk"])
        old = {k: v for k, v in item.items() if k != "clinic_id"}
        if pk.startswith("OUTBOX#"):
            envelope = json.loads(item["envelope"])
            del envelope["clinic_id"]
            old["envelope"] = json.dumps(envelope, separators=(",", ":"), sort_keys=True)
        elif pk.startswith("demo#"):
            # `APPT#<id>` with `DOCTOR#<doctor>` and `COUNTRY#<cc>#STATUS#<status>` on the
            # indexes, `DOCTOR#<id>`, `REQ#<id>`, `IDEM#<key>`, `DOCDAY#...`, `PATDAY#...`.
            for name in ("pk", "gsi1pk", "gsi2pk"):
                if name in old:
                    old[name] = str(old[name]).removeprefix("demo#")
            client.delete_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
        else:
            continue
        client.put_item(TableName=table, Item=attribute_values(old))


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
    # That release also predates clinics: bare keys everywhere (`citas migrate --clinic demo`).
    _before_clinics(world)
    # And a guard cell of this release no appointment needs (12:00 in Lima is 17:00 UTC).
    _client(world).put_item(
        TableName=world.repos.table,
        Item=attribute_values(
            {
                "pk": doctor_guard_pk("demo", "rosa", WED),
                "sk": GUARD_SK,
                "1700": "zzzz",
                "expires_at": 1,
            }
        ),
    )
    return booked


def test_the_migration_rebuilds_the_guards_and_deletes_the_old_cells(
    world: World, legacy: dict[str, Appointment]
) -> None:
    assert len(_legacy_items(world)) == 2 * (12 + 6 + 48) + 2 * 6
    status, report = migrate(_client(world), world.repos.table, NOW, clinic="demo")
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
    migrate(_client(world), world.repos.table, NOW, clinic="demo")
    before = all_items(_client(world), world.repos.table)
    status, report = migrate(_client(world), world.repos.table, NOW, clinic="demo")
    assert status == EXIT_OK
    assert (report["guards_to_update"], report["legacy_cells_to_delete"]) == (0, 0)
    assert all_items(_client(world), world.repos.table) == before


def test_a_dry_run_reports_and_writes_nothing(world: World, legacy: dict[str, Appointment]) -> None:
    before = all_items(_client(world), world.repos.table)
    status, report = migrate(_client(world), world.repos.table, NOW, clinic="demo", dry_run=True)
    assert (status, report["dry_run"], report["cells_to_set"]) == (EXIT_OK, True, 132)
    assert all_items(_client(world), world.repos.table) == before


def test_appointments_past_their_guards_ttl_need_no_guard(
    world: World, legacy: dict[str, Appointment]
) -> None:
    # Friday noon UTC: Wednesday's guards have expired (Friday 06:00), Thursday's have not.
    status, report = migrate(
        _client(world), world.repos.table, datetime(2026, 12, 4, 12, tzinfo=UTC), clinic="demo"
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
    status, report = migrate(_client(world), world.repos.table, NOW, clinic="demo")
    assert status == EXIT_CONFLICT
    assert {frozenset(c["appointment_ids"]) for c in report["conflicts"]} == {
        frozenset({ten.appointment_id, twin.appointment_id})
    }
    assert len(report["conflicts"]) == 2 * 12  # every doctor and patient cell of the visit
    assert all_items(_client(world), world.repos.table) == before


def _aws_env(monkeypatch: pytest.MonkeyPatch, endpoint_url: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint_url)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")


def test_citas_migrate_runs_on_the_configured_endpoint(
    world: World,
    legacy: dict[str, Appointment],
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _aws_env(monkeypatch, dynamodb_local.endpoint_url)
    table = world.repos.table
    assert cli.main(["migrate", "--table", table, "--clinic", "demo", "--dry-run"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert (report["table"], report["dry_run"], report["active"]) == (world.repos.table, True, 3)
    assert cli.main(["migrate", "--table", world.repos.table, "--clinic", "demo"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["legacy_cells_to_delete"] == 144
    assert _legacy_items(world) == []
    # No patient data in what it prints: ids and counts only. (A migrated table holds only
    # clinic keys: `--clinic` is optional from now on.)
    assert cli.main(["migrate", "--table", world.repos.table]) == EXIT_OK
    printed = capsys.readouterr()
    assert legacy["ten"].patient.phone not in printed.out + printed.err
    assert owner_tag(legacy["ten"].appointment_id) not in printed.out


def test_citas_migrate_says_why_it_cannot_reach_the_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _aws_env(monkeypatch, "http://127.0.0.1:9")
    assert cli.main(["migrate", "--table", "citas-nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("citas migrate: ")
    assert "Traceback" not in err


# --- a table of the release before clinics ---------------------------------------------------

KEY = "key-of-ten"
ROSA = RegisterDoctor("rosa", "Dra. Rosa Quispe", "PE", WEEKDAY_HOURS, slot_minutes=30)


@attrs.frozen
class Previous:
    """What the release before clinics held, as this release reads it in clinic `demo`."""

    booked: dict[str, Appointment]
    doctors: dict[str, Doctor]
    request: BookingRequest
    outbox: int


@pytest.fixture
def previous(world: World) -> Previous:
    """Day guards, appointments (one cancelled), doctors, a key, a request and pending events."""
    booked = {
        "ten": world.clinic.book(booking(at(WED, "10:00"), who=1, minutes=60), KEY),
        "eleven": world.clinic.book(booking(at(WED, "11:00"), who=2)),
        "long": world.clinic.book(booking(at(THU, "09:00"), who=3, minutes=240)),
    }
    gone = world.clinic.book(booking(at(WED, "12:00"), who=4))
    booked["gone"] = world.clinic.cancel(CancelAppointment(gone.appointment_id))
    request = world.clinic.request_booking(booking(at(WED, "15:00"), who=8))
    doctors = {d: world.repos.doctors.get(d) for d in ("rosa", "matias")}
    outbox = len(world.repos.outbox.pending(1000))
    _before_clinics(world)
    pks = {str(i["pk"]) for i in all_items(_client(world), world.repos.table)}
    assert f"APPT#{booked['ten'].appointment_id}" in pks
    assert f"DOCDAY#rosa#{WED}" in pks
    return Previous(booked, {k: v for k, v in doctors.items() if v is not None}, request, outbox)


def _in(clinic_id: str, world: World) -> Clinic:
    """The use cases of one clinic, on the world's table, through this release's repositories."""
    repos = DynamoDBRepositories(world.repos.table, _client(world))
    return Clinic(
        repos.appointments(clinic_id),
        repos.doctors(clinic_id),
        repos.requests(clinic_id),
        world.queue,
        world.clock,
        UuidV7Generator(),
        CountryCatalog(),
        clinic_id=clinic_id,
    )


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "dry_run"}


MOVED = {
    "appointments_moved": 4,
    "doctors_moved": 2,
    "requests_moved": 1,
    "idempotency_moved": 1,
}


def test_a_table_of_the_release_before_clinics_moves_whole_to_the_named_clinic(
    world: World, previous: Previous
) -> None:
    status, report = migrate(_client(world), world.repos.table, NOW, clinic="sol")
    assert status == EXIT_OK, report
    assert {k: report[k] for k in MOVED} == MOVED
    assert (report["clinic"], report["clinics"]) == ("sol", ["sol"])
    assert report["outbox_updated"] == previous.outbox > 0
    # Rosa's two days and four patients' (the cancelled one's guard is left empty).
    assert report["unprefixed_guards_to_delete"] == 2 + 4
    assert report["copies_already_made"] == 0
    repos = DynamoDBRepositories(world.repos.table, _client(world))

    # Everything reads back through this release's repositories of clinic sol, as it was.
    for appointment in previous.booked.values():
        moved = repos.appointments("sol").get(appointment.appointment_id)
        assert moved is not None
        assert moved.snapshot() == {**appointment.snapshot(), "clinic_id": "sol"}
        assert repos.appointments("demo").get(appointment.appointment_id) is None
    for doctor_id, doctor in previous.doctors.items():
        assert repos.doctors("sol").get(doctor_id) == attrs.evolve(doctor, clinic_id="sol")
    request = repos.requests("sol").get(previous.request.request_id)
    assert request is not None
    assert (request.clinic_id, request.status) == ("sol", RequestStatus.PENDING)
    assert request.command == previous.request.command
    # The indexes: a doctor's day and a country's status list, both rebuilt for sol.
    days = repos.appointments("sol").list_by_doctor(
        "rosa", at(WED, "00:00"), at(THU, "00:00"), 10, None
    )
    assert {a.appointment_id for a in days.items} == {
        previous.booked[k].appointment_id for k in ("ten", "eleven", "gone")
    }
    cancelled = repos.appointments("sol").list_by_country_status(
        "PE", Status.CANCELLED, Window(), 10, None
    )
    assert [a.appointment_id for a in cancelled.items] == [previous.booked["gone"].appointment_id]
    # The pending events name their clinic: the relay reads every one of them.
    events = DynamoDBEventOutbox(world.repos.table, _client(world)).pending(1000)
    assert len(events) == previous.outbox
    assert {e.clinic_id for e in events} == {"sol"}

    # Nothing is left under a bare key but the deployment's own ledgers.
    for item in all_items(_client(world), world.repos.table):
        pk = str(item["pk"])
        assert pk.startswith(("sol#", "OUTBOX#", "DONE#")), pk
        if pk.startswith("sol#"):
            assert all(str(item[i]).startswith("sol#") for i in ("gsi1pk", "gsi2pk") if i in item)
            assert item.get("clinic_id", "sol") == "sol"

    # The key replays in sol; the guards hold the moved time in sol, and only there.
    sol = _in("sol", world)
    again = sol.book(booking(at(WED, "10:00"), who=1, minutes=60), KEY)
    assert again.appointment_id == previous.booked["ten"].appointment_id
    active = [a for a in previous.booked.values() if a.is_active]
    expected: dict[str, str] = {}
    for appointment in active:
        # Booked (as `demo`) before the table was made pre-clinic; it now belongs to sol.
        expected.update(time_of(attrs.evolve(appointment, clinic_id="sol")))
    assert held_time(_client(world), world.repos.table) == expected
    with pytest.raises(SlotUnavailable):
        sol.book(booking(at(WED, "10:30"), who=5))
    with pytest.raises(PatientDoubleBooked):
        sol.book(booking(at(THU, "12:20", SANTIAGO), who=3, doctor="matias"))
    sol.book(booking(at(WED, "12:00"), who=6))  # the cancelled one's time is free
    # Another clinic with a doctor of the same id books the very same time and patient.
    world.clinic.register_doctor(ROSA)
    world.clinic.book(booking(at(WED, "10:00"), who=1, minutes=60))


def test_a_second_run_has_nothing_to_do(world: World, previous: Previous) -> None:
    migrate(_client(world), world.repos.table, NOW, clinic="sol")
    before = all_items(_client(world), world.repos.table)
    for clinic in ("sol", None):  # `--clinic` is optional once nothing is unprefixed
        status, report = migrate(_client(world), world.repos.table, NOW, clinic=clinic)
        assert status == EXIT_OK, report
        assert report["nothing_to_do"] is True
        assert {k: report[k] for k in MOVED} == dict.fromkeys(MOVED, 0)
        assert (report["outbox_updated"], report["unprefixed_guards_to_delete"]) == (0, 0)
        assert (report["cells_to_set"], report["cells_to_remove"]) == (0, 0)
    assert all_items(_client(world), world.repos.table) == before


def test_a_dry_run_of_a_move_writes_nothing_and_counts_the_same(
    world: World, previous: Previous
) -> None:
    before = all_items(_client(world), world.repos.table)
    status, dry = migrate(_client(world), world.repos.table, NOW, clinic="sol", dry_run=True)
    assert (status, dry["dry_run"], dry["nothing_to_do"]) == (EXIT_OK, True, False)
    assert all_items(_client(world), world.repos.table) == before
    status, done = migrate(_client(world), world.repos.table, NOW, clinic="sol")
    assert status == EXIT_OK
    assert _counts(dry) == _counts(done)


class _Interrupted:
    """A client whose `method` fails (as a lost connection) after `after` calls."""

    def __init__(self, client: DynamoDBClient, method: str, after: int) -> None:
        self._client, self._method, self._left = client, method, after

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._client, name)
        if name != self._method:
            return call

        def interrupted(**kwargs: Any) -> Any:
            if self._left == 0:
                raise EndpointConnectionError(endpoint_url="http://interrupted")
            self._left -= 1
            return call(**kwargs)

        return interrupted


def test_a_run_interrupted_half_way_is_completed_by_the_next(
    world: World, previous: Previous
) -> None:
    table = world.repos.table
    before = {(i["pk"], i["sk"]): i for i in all_items(_client(world), table)}
    cut = cast("DynamoDBClient", _Interrupted(_client(world), "put_item", after=3))
    with pytest.raises(EndpointConnectionError):
        migrate(cut, table, NOW, clinic="sol")
    # Cut among the copies: the old layout is whole, the earlier release could still serve it.
    after = {(i["pk"], i["sk"]): i for i in all_items(_client(world), table)}
    assert {k: after[k] for k in before} == before
    assert len(after) == len(before) + 3

    cut = cast("DynamoDBClient", _Interrupted(_client(world), "batch_write_item", after=0))
    with pytest.raises(TemporarilyUnavailable):
        migrate(cut, table, NOW, clinic="sol")
    # Cut at the deletes: this release's layout is whole already (and the old one still).
    sol = _in("sol", world)
    for appointment in previous.booked.values():
        assert sol.appointments.get(appointment.appointment_id) is not None
    with pytest.raises(SlotUnavailable):
        sol.book(booking(at(WED, "10:30"), who=5))

    status, report = migrate(_client(world), table, NOW, clinic="sol")
    assert status == EXIT_OK, report
    assert report["copies_already_made"] == sum(MOVED.values())
    assert (report["outbox_updated"], report["guards_to_update"]) == (0, 0)
    assert all(
        str(i["pk"]).startswith(("sol#", "OUTBOX#", "DONE#"))
        for i in all_items(_client(world), table)
    )


def test_a_re_run_keeps_the_clinic_of_the_interrupted_run(world: World, previous: Previous) -> None:
    cut = cast("DynamoDBClient", _Interrupted(_client(world), "batch_write_item", after=0))
    with pytest.raises(TemporarilyUnavailable):
        migrate(cut, world.repos.table, NOW, clinic="sol")
    before = all_items(_client(world), world.repos.table)
    with pytest.raises(CannotMigrate, match=r"copied to clinic 'sol' .* --clinic sol$"):
        migrate(_client(world), world.repos.table, NOW, clinic="luna")
    assert all_items(_client(world), world.repos.table) == before


def test_a_table_of_this_release_needs_no_clinic(world: World) -> None:
    ten = world.clinic.book(booking(at(WED, "10:00"), who=1))
    sol = _in("sol", world)
    sol.register_doctor(ROSA)
    there = sol.book(booking(at(WED, "10:00"), who=1))
    _to_legacy_layout(world, [])  # every guard gone, no cell items
    status, report = migrate(_client(world), world.repos.table, NOW)
    assert status == EXIT_OK, report
    assert (report["clinic"], report["clinics"], report["active"]) == (None, ["demo", "sol"], 2)
    assert report["cells_to_set"] == 2 * 2 * 6
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "10:00"), who=2))
    with pytest.raises(SlotUnavailable):
        sol.book(booking(at(WED, "10:00"), who=2))
    assert {ten.clinic_id, there.clinic_id} == {"demo", "sol"}


def test_citas_migrate_needs_a_well_formed_clinic_for_a_table_before_clinics(
    world: World,
    previous: Previous,
    dynamodb_local: DynamoDBLocal,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _aws_env(monkeypatch, dynamodb_local.endpoint_url)
    table = world.repos.table
    before = all_items(_client(world), table)
    for dry in ([], ["--dry-run"]):
        assert cli.main(["migrate", "--table", table, *dry]) == 2
        printed = capsys.readouterr()
        assert printed.out == ""
        assert printed.err.startswith("citas migrate: the table holds items written before")
        assert "4 appointments, 2 doctors, 1 booking requests, 1 idempotency keys" in printed.err
        assert printed.err.rstrip().endswith("with --clinic ID")
        assert "Traceback" not in printed.err
    for bad in ("Sol", "s", "sol#1", "x" * 41):
        with pytest.raises(SystemExit) as exited:
            cli.main(["migrate", "--table", table, "--clinic", bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "argument --clinic: a clinic id is 2-40 lower-case letters, digits or '-'" in err
    with pytest.raises(CannotMigrate, match="--clinic"):
        migrate(_client(world), table, NOW, clinic="Sol")
    assert all_items(_client(world), table) == before
    assert cli.main(["migrate", "--table", table, "--clinic", "sol"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["appointments_moved"] == 4
