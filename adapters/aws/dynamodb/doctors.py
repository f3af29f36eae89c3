"""The doctor repository: the profile, its time off and the schedule version, in one partition.

The profile (`<clinic>#DOCTOR#<doctor>` / `PROFILE`) carries `schedule_version`, bumped by
every change of the profile or of the time off, and `time_off`: the blocks that have not yet
ended, by id. A schedule is that one item, read with one strongly consistent GetItem: a
single item is never seen half-way through a transaction, where a Query of several items may
be (DynamoDB isolates a Query from a transaction item by item only). Each block is also an
item of its own in the same partition (sort key `TIMEOFF#<id>`), listed by start in gsi1
(`<clinic>#TIMEOFF#<doctor>`), and kept after it ends.

Time off and bookings race safely without locking weeks of cells: a booking's transaction
checks the schedule version it was judged against, and a block's transaction bumps it. A
booking that commits first must be seen by the block: the block reads the doctor's day guards
of its range (strongly consistent BatchGetItem; GSIs are eventually consistent) and refuses
to cover a taken cell, and its transaction checks that none of those guards was written since
(their `writes` counter). Either the block commits after every booking it read, or the
booking commits after the block and fails its version check: exactly one wins.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from adapters.aws.client import is_condition_failure
from adapters.aws.dynamodb.appointments import schedule_condition
from adapters.aws.dynamodb.guards import GUARD_SK, WRITES, doctor_guards, owner_tag, read_guard
from adapters.aws.dynamodb.items import (
    appointment_from_item,
    attribute_values,
    doctor_from_item,
    doctor_to_item,
    event_to_item,
    time_off_from_item,
    time_off_to_item,
)
from adapters.aws.dynamodb.keys import (
    DOCTOR_SK,
    SCHEDULE_VERSION,
    TIME_OFF_MAP,
    doctor_partition,
    doctor_pk,
    instant,
    time_off_partition,
    time_off_sk,
)
from adapters.aws.dynamodb.table import Table
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction
from adapters.aws.dynamodb.waitlist import held_entries
from domain.clinics import require_clinic
from domain.errors import (
    InvalidCursor,
    ScheduleChanged,
    TemporarilyUnavailable,
    TimeOffConflict,
    ZoneChanged,
)
from domain.events import Event
from domain.rules import Schedule
from domain.schedule import CELL_MINUTES, MAX_DURATION_MINUTES, Doctor
from domain.time_off import TimeOff, overlapping_from
from ports.repositories import Cursor, Page

if TYPE_CHECKING:
    from adapters.aws.dynamodb.table import TableClient

# Rounds of read-then-commit a block of time off gets while bookings keep writing its days.
TIME_OFF_ATTEMPTS: Final = 5
# How long the appointments a guard shows may take to appear in gsi1, to be named.
_INDEX_WAIT: Final = (0.05, 0.2, 0.5)
_CELL = timedelta(minutes=CELL_MINUTES)
_LONGEST_VISIT = timedelta(minutes=MAX_DURATION_MINUTES)


class DynamoDBDoctorRepository:
    """One clinic's doctors: profile, time off and schedule version per doctor partition."""

    def __init__(self, table_name: str, client: TableClient = None, *, clinic_id: str) -> None:
        self._table = Table(table_name, client)
        self._clinic = clinic_id

    def put(self, doctor: Doctor, *, keep_zone: bool = False) -> bool:
        """Create or replace in one UpdateItem, bumping the version; True if it is new.

        `keep_zone`: conditioned on a new doctor or the same time zone, else ZoneChanged
        (nothing written). A profile equal to the stored one writes nothing.
        """
        require_clinic(self._clinic, doctor.clinic_id, "a doctor")
        item = {k: v for k, v in doctor_to_item(doctor).items() if k not in ("pk", "sk")}
        names = {f"#a{i}": k for i, k in enumerate(item)}
        values: dict[str, Any] = {f":v{i}": v for i, v in enumerate(item.values())}
        sets = [f"#a{i} = :v{i}" for i in range(len(item))]
        names["#sv"] = SCHEDULE_VERSION
        values.update({":zero": 0, ":one": 1})
        sets.append("#sv = if_not_exists(#sv, :zero) + :one")
        # Only a real change is written: the same PUT again bumps no version, so no
        # container's cached schedule goes stale for nothing.
        changed = " OR ".join(f"#a{i} <> :v{i}" for i in range(len(item)))
        condition = f"attribute_not_exists(pk) OR attribute_not_exists(#sv) OR {changed}"
        if keep_zone:
            names["#zone"] = "time_zone"
            values[":zone"] = doctor.time_zone
            condition = f"(attribute_not_exists(pk) OR #zone = :zone) AND ({condition})"
        try:
            before = self._table.update(
                doctor_pk(self._clinic, doctor.doctor_id),
                DOCTOR_SK,
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values(values),
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise
            stored: Any = e.response.get("Item")
            zone = stored.get("time_zone", {}).get("S") if isinstance(stored, dict) else None
            if keep_zone and zone != doctor.time_zone:
                raise ZoneChanged(doctor.doctor_id) from e
            return False  # the same profile: nothing to write
        return not before

    def get(self, doctor_id: str) -> Doctor | None:
        """The doctor (strongly consistent read), or None."""
        item = self._table.get(doctor_pk(self._clinic, doctor_id), DOCTOR_SK)
        return doctor_from_item(item) if item is not None else None

    def schedule(self, doctor_id: str, since: datetime) -> Schedule | None:
        """Profile, version and time off ending after `since`: one consistent GetItem."""
        item = self._table.get(doctor_pk(self._clinic, doctor_id), DOCTOR_SK)
        if item is None:
            return None
        blocks = sorted(
            (
                TimeOff.from_snapshot(
                    {**span, "clinic_id": self._clinic, "doctor_id": doctor_id, "time_off_id": k}
                )
                for k, span in dict(item.get(TIME_OFF_MAP, {})).items()
            ),
            key=lambda b: (b.start, b.time_off_id),
        )
        version = int(item.get(SCHEDULE_VERSION, 0))
        current = tuple(b for b in blocks if b.end > since)
        return Schedule(doctor_from_item(item), version, current)

    def get_time_off(self, doctor_id: str, time_off_id: str) -> TimeOff | None:
        """One block (strongly consistent read), or None."""
        item = self._table.get(doctor_pk(self._clinic, doctor_id), time_off_sk(time_off_id))
        return time_off_from_item(item) if item is not None else None

    def put_time_off(self, block: TimeOff, schedule: Schedule, event: Event) -> None:
        """Create or replace a block over free time only, in one transaction (see the module)."""
        require_clinic(self._clinic, block.clinic_id, "time off")
        guards = doctor_guards(self._clinic, block.doctor_id, block.start, block.end)
        for _attempt in range(TIME_OFF_ATTEMPTS):
            stored = {
                item["pk"]: item
                for item in self._table.batch_get([(g.pk, GUARD_SK) for g in guards])
            }
            covered = _covered_tags(stored.values(), block)
            if covered:
                raise TimeOffConflict.covering(*self._covering(block, covered))
            tx = Transaction(self._table.table_name)
            others = [b for b in schedule.time_off if b.time_off_id != block.time_off_id]
            self._bump(tx, block.doctor_id, schedule, [*others, block])
            tx.put(time_off_to_item(block), Role.TIME_OFF)
            for guard in guards:
                condition, names, values = _unchanged(stored.get(guard.pk))
                tx.check(guard.pk, GUARD_SK, Role.DOCTOR_GUARD, condition, names, values)
            tx.put(event_to_item(event), Role.EVENT)
            try:
                self._table.transact(tx)
            except Cancelled as cancelled:
                if tx.first(cancelled, Role.SCHEDULE):
                    raise ScheduleChanged(block.doctor_id) from None
                continue  # a booking or a cancellation wrote one of the days: read again
            return
        raise TemporarilyUnavailable(
            "the doctor's days keep changing, retry the time off shortly", service="dynamodb"
        )

    def _covering(self, block: TimeOff, tags: set[str]) -> tuple[list[str], list[str]]:
        """The active appointments and the held offers overlapping `block`, by their indexes.

        gsi1 names the appointments, gsi2 the waitlist entries whose offer holds time there;
        both are eventually consistent, so the reads wait for them to show every covered tag
        (at once when they already do: then no wait at all).
        """
        ids: list[str] = []
        held: list[str] = []
        for wait in (0.0, *_INDEX_WAIT):
            time.sleep(wait)
            items = self._table.query_all(
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
                ExpressionAttributeValues=attribute_values(
                    {
                        ":pk": doctor_partition(self._clinic, block.doctor_id),
                        ":low": instant(block.start - _LONGEST_VISIT),
                        ":high": instant(block.end),
                    }
                ),
            )
            found = [appointment_from_item(i) for i in items]
            ids = [
                a.appointment_id for a in found if a.is_active and block.overlaps(a.start, a.end)
            ]
            # A hold's cells carry the tag of the appointment its offer would become.
            offers = {
                e.waitlist_id: e.offer
                for e in held_entries(
                    self._table,
                    self._clinic,
                    block.doctor_id,
                    block.start - _LONGEST_VISIT,
                    block.end,
                )
                if e.offer is not None and block.overlaps(e.offer.start, e.offer.end)
            }
            held = sorted(offers)
            explained = {owner_tag(i) for i in ids}
            explained |= {owner_tag(o.appointment_id) for o in offers.values()}
            if explained >= tags:
                break
        return ids, held

    def remove_time_off(self, block: TimeOff, schedule: Schedule, event: Event) -> None:
        """Delete a block, bump the version and keep the event, in one transaction."""
        require_clinic(self._clinic, block.clinic_id, "time off")
        tx = Transaction(self._table.table_name)
        others = [b for b in schedule.time_off if b.time_off_id != block.time_off_id]
        self._bump(tx, block.doctor_id, schedule, others)
        pk = doctor_pk(self._clinic, block.doctor_id)
        tx.delete(pk, time_off_sk(block.time_off_id), Role.TIME_OFF, "attribute_exists(pk)")
        tx.put(event_to_item(event), Role.EVENT)
        try:
            self._table.transact(tx)
        except Cancelled:
            # A newer version, or the block already gone: either way not what was read.
            raise ScheduleChanged(block.doctor_id) from None

    def _bump(
        self, tx: Transaction, doctor_id: str, schedule: Schedule, blocks: list[TimeOff]
    ) -> None:
        """Set the profile's blocks (those not yet ended) and the next version, if unchanged."""
        condition, names, values = schedule_condition(schedule.version)
        spans = {b.time_off_id: _span(b) for b in blocks}
        tx.update(
            doctor_pk(self._clinic, doctor_id),
            DOCTOR_SK,
            Role.SCHEDULE,
            "SET #sv = :next, #blocks = :blocks",
            condition,
            {**names, "#blocks": TIME_OFF_MAP},
            {**(values or {}), ":next": schedule.version + 1, ":blocks": spans},
        )

    def list_time_off(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page[TimeOff]:
        """A doctor's blocks overlapping [start_from, start_to), by start: a Query on gsi1.

        A doctor has few blocks in any range, so the page is cut here, after the blocks that
        ended before the range are left out.
        """
        after = _position(cursor) if cursor is not None else None
        items = self._table.query_all(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :low AND :high",
            ExpressionAttributeValues=attribute_values(
                {
                    ":pk": time_off_partition(self._clinic, doctor_id),
                    ":low": instant(overlapping_from(start_from)),
                    # A bare instant sorts before every `<instant>#<id>` of that instant.
                    ":high": instant(start_to),
                }
            ),
        )
        blocks = sorted(
            (b for b in map(time_off_from_item, items) if b.overlaps(start_from, start_to)),
            key=_order,
        )
        if after is not None:
            blocks = [b for b in blocks if _order(b) > after]
        kept = blocks[:limit]
        if len(blocks) <= limit:
            return Page(kept, None)
        return Page(kept, {"start": kept[-1].start.isoformat(), "id": kept[-1].time_off_id})


def _span(block: TimeOff) -> dict[str, str]:
    """What the profile keeps of a block: its times and reason, by id."""
    kept = block.snapshot()
    return {k: kept[k] for k in ("start", "end", "reason") if k in kept}


def _order(block: TimeOff) -> tuple[datetime, str]:
    return block.start, block.time_off_id


def _position(cursor: Mapping[str, Any]) -> tuple[datetime, str]:
    """Where a time-off cursor this repository made points after, or InvalidCursor."""
    if not isinstance(cursor, Mapping) or set(cursor) != {"start", "id"}:
        raise InvalidCursor("unexpected cursor shape")
    start, block_id = cursor["start"], cursor["id"]
    if not isinstance(start, str) or not isinstance(block_id, str):
        raise InvalidCursor("cursor values must be strings")
    try:
        when = datetime.fromisoformat(start)
    except ValueError as e:
        raise InvalidCursor(str(e)) from e
    if when.tzinfo is None:
        raise InvalidCursor("the cursor's instant has no offset")
    return when, block_id


def _covered_tags(items: Any, block: TimeOff) -> set[str]:
    """The owner tags of the doctor cells the block would cover, in the guards read."""
    tags: set[str] = set()
    for item in items:
        _, _, cells = read_guard(item)
        tags |= {tag for cell, tag in cells.items() if block.overlaps(cell, cell + _CELL)}
    return tags


def _unchanged(
    item: Mapping[str, Any] | None,
) -> tuple[str, dict[str, str] | None, dict[str, int] | None]:
    """The condition that a guard is as it was read: absent, or at the same write count."""
    if item is None:
        return "attribute_not_exists(pk)", None, None
    names = {"#w": WRITES}
    if WRITES not in item:
        return "attribute_exists(pk) AND attribute_not_exists(#w)", names, None
    return "#w = :w", names, {":w": int(item[WRITES])}
