"""`citas migrate`: bring a table written by any earlier release to this release's layout.

Offline: stop the API (and its workers) before running it, and start it again after. The
plan is made from one read of the whole table (a Scan: it is an operator's one-off pass,
never a request path, and it is not in the Lambda zip); a release writing meanwhile would
write keys this pass does not know about.

What earlier releases left, and what becomes of it:

- Releases before clinics stored a clinic's data under bare keys (`APPT#<id>`, `DOCTOR#<id>`,
  `REQ#<id>`, `IDEM#<key>`, day guards `DOCDAY#`/`PATDAY#`); this release starts every such
  key with `<clinic>#`. Each appointment, doctor, booking request and idempotency item is
  rebuilt from its item, given the clinic of `--clinic`, and written by this release's item
  mappers (GSI keys included) under its clinic key, on `attribute_not_exists(pk)` so that
  newer data is never overwritten; the old item is deleted after. Pending outbox events get
  the clinic in their envelope and as an attribute, in place (the relay reads none without).
  `--clinic` is required as soon as the table holds one such item, and optional otherwise.
- Releases before the day guards held an appointment's time as one `DOCSLOT#`/`PATSLOT#`
  item per 5-minute cell (sort key `LOCK`); those items are deleted.
- Day guards are rebuilt, per clinic, from the active appointments: every cell each one needs
  is set, valued with its tag, every guard cell no active appointment needs is removed, and
  the unprefixed guards of the release before clinics are deleted.

Order of writes, so that an interrupted run leaves a table a second run completes: first
the copies (until then the old layout is whole, and the earlier release can still serve it),
then the guards and the outbox (from then on this release's layout is whole), and only then
the deletes. A copy found already made (by an interrupted run) is kept as is; its old item is
only deleted.

Each guard update is conditioned on the cells being as read, each copy on its key being free,
each outbox update on the envelope as read: a concurrent change makes the command stop with
exit status 1 rather than overwrite it (before any delete); run it again. Running it again on
a migrated table changes nothing. Appointments whose days are past their guards' TTL need no
guard and are skipped. Two active appointments that need the same cell (which the old cells
made impossible) are reported, never silently resolved.

The plan itself (what to copy, set, remove and delete) is made by `adapters.aws.migrate_plan`
from the items as read; this module reads, applies and reports.

Prints one JSON object (counts and conflicts, appointment ids only: no patient data) on
stdout. Exit status 0 when done, 1 on a conflict, 2 with one line on stderr when the table
cannot be read or written, when its items need a clinic and `--clinic` is missing, or (from
argparse) when an argument is malformed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.client import CLIENT_CONFIG
from adapters.aws.dynamodb.guards import (
    GUARD_SK,
    guard_expiry,
)
from adapters.aws.dynamodb.items import (
    attribute_values,
    from_attribute_values,
)
from adapters.aws.dynamodb.keys import (
    EVENT_SK,
    LOCK_SK,
    key,
)
from adapters.aws.dynamodb.table import Table
from domain.clinics import check_clinic_id
from domain.errors import TemporarilyUnavailable, ValidationError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

from adapters.aws.migrate_plan import (
    CELLS_PER_UPDATE,
    CLINIC_RULE,
    DELETES_PER_BATCH,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    MIGRATE_HELP,
    CannotMigrate,
    ChangedMeanwhile,
    GuardPlan,
    Move,
    OutboxUpdate,
    Plan,
    make_plan,
)


def scan(client: DynamoDBClient, table_name: str) -> Iterator[dict[str, Any]]:
    """Every item of the table, as plain values (consistent reads, page by page)."""
    request: dict[str, Any] = {"TableName": table_name, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        yield from (from_attribute_values(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def apply(client: DynamoDBClient, table_name: str, plan: Plan) -> None:
    """Write the plan: copies, then guards and outbox (all conditioned), then the deletes."""
    for move in plan.moves:
        if not move.copied:
            _copy(client, table_name, move)
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
    for update in plan.outbox:
        _update_outbox(client, table_name, update)
    # Last: until here every old item is still in place, so an interrupted run loses nothing.
    doomed = [(move.old_pk, move.old_sk) for move in plan.moves]
    doomed += [(pk, GUARD_SK) for pk in plan.unprefixed_guards]
    doomed += [(pk, LOCK_SK) for pk in plan.legacy_cells]
    table = Table(table_name, client)
    for start in range(0, len(doomed), DELETES_PER_BATCH):
        table.batch_delete(doomed[start : start + DELETES_PER_BATCH])


def _copy(client: DynamoDBClient, table_name: str, move: Move) -> None:
    try:
        client.put_item(
            TableName=table_name,
            Item=attribute_values(move.item),
            # Never over an item the read did not see: it is newer than this copy.
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as error:
        if _condition_failed(error):
            raise ChangedMeanwhile(str(move.item["pk"])) from error
        raise


def _update_outbox(client: DynamoDBClient, table_name: str, update: OutboxUpdate) -> None:
    try:
        client.update_item(
            TableName=table_name,
            Key=key(update.pk, EVENT_SK),
            UpdateExpression="SET #envelope = :envelope, #clinic = :clinic",
            # As read: an event the relay deleted meanwhile must not come back as a stub.
            ConditionExpression="#envelope = :was",
            ExpressionAttributeNames={"#envelope": "envelope", "#clinic": "clinic_id"},
            ExpressionAttributeValues={
                ":envelope": {"S": update.envelope},
                ":clinic": {"S": update.clinic_id},
                ":was": {"S": update.envelope_was},
            },
        )
    except ClientError as error:
        if not _condition_failed(error):
            raise
        gone = "Item" not in client.get_item(
            TableName=table_name, Key=key(update.pk, EVENT_SK), ConsistentRead=True
        )
        if not gone:  # published and deleted is fine; changed is someone else's write
            raise ChangedMeanwhile(update.pk) from error


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
            Key=key(guard.pk, GUARD_SK),
            UpdateExpression=expression,
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if _condition_failed(error):
            raise ChangedMeanwhile(guard.pk) from error
        raise


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def migrate(
    client: DynamoDBClient,
    table_name: str,
    now: datetime,
    *,
    clinic: str | None = None,
    dry_run: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Plan and (unless `dry_run`) apply the migration; the exit status and the report.

    `clinic`: the clinic the table's unprefixed items belong to (CannotMigrate when the
    table has some and it is None).
    """
    if clinic is not None:
        try:
            check_clinic_id(clinic)
        except ValidationError:
            raise CannotMigrate(f"--clinic {clinic!r}: {CLINIC_RULE}") from None
    plan = make_plan(scan(client, table_name), now, clinic)
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


def _clinic_id(value: str) -> str:
    try:
        return check_clinic_id(value)
    except ValidationError:
        raise argparse.ArgumentTypeError(CLINIC_RULE) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `citas migrate`."""
    parser = argparse.ArgumentParser(
        prog="citas migrate",
        description=MIGRATE_HELP,
        epilog=(
            "Stop the API before running it; a run interrupted half-way is completed by "
            "running it again. Exit status: 0 done, 1 conflict or concurrent write (nothing "
            "overwritten), 2 the table cannot be read or written, or --clinic is missing."
        ),
    )
    parser.add_argument("--table", required=True, help="the DynamoDB table to migrate")
    parser.add_argument(
        "--clinic",
        type=_clinic_id,
        metavar="ID",
        help=(
            "the clinic that owns the data of a table written before clinics (required "
            "then, optional otherwise); [a-z0-9-]{2,40}"
        ),
    )
    parser.add_argument("--dry-run", action="store_true", help="read and report, write nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `citas migrate` with `argv`; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        client = boto3.client("dynamodb", config=CLIENT_CONFIG)
        status, report = migrate(
            client, args.table, datetime.now(UTC), clinic=args.clinic, dry_run=args.dry_run
        )
    except CannotMigrate as error:
        print(f"citas migrate: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (BotoCoreError, ClientError, TemporarilyUnavailable, ValueError) as error:
        print(f"citas migrate: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(report, separators=(", ", ": ")), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
