"""`citas migrate`: rebuild the day guards of a table from its appointments, idempotently.

Releases before the day guards held an appointment's time as one `DOCSLOT#`/`PATSLOT#` item per
5-minute cell (sort key `LOCK`). This command reads the whole table once (a Scan: it is an
operator's one-off pass, never a request path, and it is not in the Lambda zip), then:

1. writes into the day guards every cell each active appointment needs, valued with its tag;
2. removes every guard cell no active appointment needs (a cell left by anything but citas);
3. deletes the old cell items.

Run it with the API closed to traffic (see the README's "Upgrading"): the plan is made from
one read of the table, and each guard update is conditioned on the cells being as read, so a
concurrent change makes the command stop with exit status 1 rather than overwrite it; run it
again. Running it again on a migrated table changes nothing. Appointments whose days are past
their guards' TTL need no guard and are skipped. Two active appointments that need the same
cell (which the old cells made impossible) are reported, never silently resolved.

Prints one JSON object (counts and conflicts, appointment ids only: no patient data) on
stdout. Exit status 0 when done, 1 on a conflict, 2 with one line on stderr when the table
cannot be read or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

import boto3
from attrs import define, field
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.client import CLIENT_CONFIG
from adapters.aws.dynamodb.guards import (
    GUARD_SK,
    guard_expiry,
    held,
    is_guard,
    owner_tag,
    parse_guard_pk,
    stored_cells,
)
from adapters.aws.dynamodb.items import appointment_from_item, from_attribute_values
from adapters.aws.dynamodb.keys import APPOINTMENT_SK, LOCK_SK, epoch
from adapters.aws.dynamodb.table import Table
from domain.errors import TemporarilyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

EXIT_OK: Final = 0
EXIT_CONFLICT: Final = 1
EXIT_FAILED: Final = 2
LEGACY_CELL_PREFIXES: Final = ("DOCSLOT#", "PATSLOT#")
# Cells per UpdateItem: each costs a name, a value and a comparison, and DynamoDB allows 300
# operators per expression.
CELLS_PER_UPDATE: Final = 80
DELETES_PER_BATCH: Final = 25


@define
class GuardPlan:
    """What one guard item holds now and must hold after the migration."""

    pk: str
    day: date
    have: dict[str, str] = field(factory=dict)
    want: dict[str, str] = field(factory=dict)

    def changes(self) -> tuple[dict[str, str], list[str]]:
        """The cells to set (name -> tag) and the cells to remove."""
        sets = {name: tag for name, tag in self.want.items() if self.have.get(name) != tag}
        removes = sorted(name for name in self.have if name not in self.want)
        return sets, removes


@define
class Plan:
    """Everything the migration will write, made from one read of the table."""

    guards: dict[str, GuardPlan] = field(factory=dict)
    legacy_cells: list[str] = field(factory=list)
    appointments: int = 0
    active: int = 0
    past: int = 0
    conflicts: list[dict[str, Any]] = field(factory=list)

    def report(self) -> dict[str, Any]:
        """Counts of what the plan changes, for the operator."""
        changes = [g.changes() for g in self.guards.values()]
        return {
            "appointments": self.appointments,
            "active": self.active,
            "active_past_their_guards": self.past,
            "guards_to_update": sum(1 for sets, removes in changes if sets or removes),
            "cells_to_set": sum(len(sets) for sets, _ in changes),
            "cells_to_remove": sum(len(removes) for _, removes in changes),
            "legacy_cells_to_delete": len(self.legacy_cells),
            "conflicts": self.conflicts,
        }


def make_plan(items: Iterable[Mapping[str, Any]], now: datetime) -> Plan:
    """The migration of a table whose items (plain values) are `items`, at `now`."""
    plan = Plan()
    appointments = []
    for item in items:
        pk, sk = str(item["pk"]), str(item["sk"])
        if pk.startswith("APPT#") and sk == APPOINTMENT_SK:
            appointments.append(appointment_from_item(dict(item)))
        elif pk.startswith(LEGACY_CELL_PREFIXES) and sk == LOCK_SK:
            plan.legacy_cells.append(pk)
        elif is_guard(pk) and sk == GUARD_SK:
            stored = _guard(plan, pk)
            stored.have = stored_cells(item)
    plan.appointments = len(appointments)
    owners: dict[tuple[str, str], str] = {}
    for appointment in sorted(appointments, key=lambda a: (a.created_at, a.appointment_id)):
        if not appointment.is_active:
            continue
        plan.active += 1
        tag = owner_tag(appointment.appointment_id)
        needed = {g: names for g, names in held(appointment).items() if _live(g.day, now)}
        if not needed:
            plan.past += 1
        for guard, names in needed.items():
            target = _guard(plan, guard.pk)
            for name in sorted(names):
                holder = owners.setdefault((guard.pk, name), appointment.appointment_id)
                if holder != appointment.appointment_id:
                    plan.conflicts.append(
                        {
                            "guard": guard.pk.split("#", 1)[0],
                            "cell": name,
                            "day": str(guard.day),
                            "appointment_ids": [holder, appointment.appointment_id],
                        }
                    )
                    continue
                target.want[name] = tag
    return plan


def _guard(plan: Plan, pk: str) -> GuardPlan:
    if pk not in plan.guards:
        plan.guards[pk] = GuardPlan(pk, parse_guard_pk(pk)[2])
    return plan.guards[pk]


def _live(day: date, now: datetime) -> bool:
    return guard_expiry(day) > epoch(now)


def scan(client: DynamoDBClient, table_name: str) -> Iterator[dict[str, Any]]:
    """Every item of the table, as plain values (consistent reads, page by page)."""
    request: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        yield from (from_attribute_values(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class ChangedMeanwhile(Exception):
    """A guard was written by someone else while the migration ran."""


def apply(client: DynamoDBClient, table_name: str, plan: Plan) -> None:
    """Write the plan: guard updates conditioned on what was read, then delete old cells."""
    for guard in plan.guards.values():
        sets, removes = guard.changes()
        touched = [*sets, *removes]
        for start in range(0, len(touched), CELLS_PER_UPDATE):
            chunk = touched[start : start + CELLS_PER_UPDATE]
            _update_guard(
                client,
                table_name,
                guard,
                {n: sets[n] for n in chunk if n in sets},
                [n for n in chunk if n not in sets],
            )
    table = Table(table_name, client)
    for start in range(0, len(plan.legacy_cells), DELETES_PER_BATCH):
        batch = plan.legacy_cells[start : start + DELETES_PER_BATCH]
        table.batch_delete([(pk, LOCK_SK) for pk in batch])


def _update_guard(
    client: DynamoDBClient,
    table_name: str,
    guard: GuardPlan,
    sets: Mapping[str, str],
    removes: Sequence[str],
) -> None:
    names = {"#ttl": "expires_at"}
    values: dict[str, Any] = {":ttl": {"N": str(guard_expiry(guard.day))}}
    assignments = ["#ttl = :ttl"]
    conditions = []
    for i, name in enumerate([*sets, *removes]):
        names[f"#c{i}"] = name
        was = guard.have.get(name)
        # Each cell must still be as it was read: absent, or held by the same tag.
        if was is None:
            conditions.append(f"attribute_not_exists(#c{i})")
        else:
            values[f":was{i}"] = {"S": was}
            conditions.append(f"#c{i} = :was{i}")
        if name in sets:
            values[f":v{i}"] = {"S": sets[name]}
            assignments.append(f"#c{i} = :v{i}")
    expression = "SET " + ", ".join(assignments)
    removed = [f"#c{i}" for i, name in enumerate([*sets, *removes]) if name not in sets]
    if removed:
        expression += " REMOVE " + ", ".join(removed)
    try:
        client.update_item(
            TableName=table_name,
            Key={"pk": {"S": guard.pk}, "sk": {"S": GUARD_SK}},
            UpdateExpression=expression,
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            raise ChangedMeanwhile(guard.pk) from error
        raise


def migrate(
    client: DynamoDBClient, table_name: str, now: datetime, *, dry_run: bool = False
) -> tuple[int, dict[str, Any]]:
    """Plan and (unless `dry_run`) apply the migration; the exit status and the report."""
    plan = make_plan(scan(client, table_name), now)
    report = {"table": table_name, "dry_run": dry_run, **plan.report()}
    if plan.conflicts:
        return EXIT_CONFLICT, report
    if not dry_run:
        try:
            apply(client, table_name, plan)
        except ChangedMeanwhile as changed:
            report["changed_meanwhile"] = str(changed)
            return EXIT_CONFLICT, report
    return EXIT_OK, report


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `citas migrate`."""
    parser = argparse.ArgumentParser(
        prog="citas migrate",
        description="Move a table's time locks to the day guards of this release, idempotently.",
    )
    parser.add_argument("--table", required=True, help="the DynamoDB table to migrate")
    parser.add_argument("--dry-run", action="store_true", help="read and report, write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `citas migrate` with `argv`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        status, report = migrate(client, args.table, datetime.now(UTC), dry_run=args.dry_run)
    except (BotoCoreError, ClientError, TemporarilyUnavailable, ValueError) as error:
        print(f"citas migrate: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(report, separators=(", ", ": ")), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
