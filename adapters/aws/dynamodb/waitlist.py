"""The waitlist repository: entries, and the slots their offers hold in the doctor's day guards.

Items (keys in `keys`, mappers in `items`):

- entry `<clinic>#WAIT#<id>` / `ENTRY`: the snapshot with `version`; `expires_at` (TTL, a
  quarter after the entry's last date); `gsi1pk=<clinic>#WAITLIST#<doctor>`,
  `gsi1sk=<created>#<id>` (a doctor's list, oldest first). While an offer is held, and only
  then: the offer as a nested map, `offer_expires` (its expiry, a key-safe instant) and
  `gsi2pk=<clinic>#HOLD`, `gsi2sk=<doctor>#<start>#<id>` (the clinic's holds, by doctor and
  start: what availability leaves out, what time off names and what the sweep ends).

A hold is the doctor's cells taken in the name of the appointment the offer would become
(`owner_tag(offer.appointment_id)`), in the same transaction as the entry's change, so every
booking, move and time off meets it in the guards exactly as it meets an appointment. Every
change of an entry is conditioned on its version: an entry gets one offer at a time, and an
offer ends once, accepted (the appointment is booked over its own held cells: only the
patient's are taken) or released (the cells freed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import ClientError

from adapters.aws.client import is_condition_failure
from adapters.aws.dynamodb.appointments import check_schedule, refuse_add
from adapters.aws.dynamodb.guards import GuardChanges, Held, around, by_day, held, owner_tag
from adapters.aws.dynamodb.items import (
    appointment_to_item,
    attribute_values,
    from_attribute_values,
    waitlist_from_item,
    waitlist_to_item,
)
from adapters.aws.dynamodb.keys import (
    OFFER_EXPIRES,
    WAITLIST_SK,
    hold_partition,
    hold_position,
    instant,
    waitlist_partition,
    waitlist_pk,
)
from adapters.aws.dynamodb.table import Table
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction, cancelled_item
from adapters.cursors import entry_cursor, entry_position
from domain.appointment import Appointment
from domain.clinics import require_clinic
from domain.errors import OfferExpired, ScheduleChanged, VersionConflict
from domain.rules import Schedule
from domain.schedule import cells
from domain.waitlist import Offer, WaitlistEntry, WaitStatus
from ports.repositories import Cursor, Page

if TYPE_CHECKING:
    from adapters.aws.dynamodb.table import TableClient

# The entry's Update is the first item of each of its transactions.
_ENTRY = 0

# An Update of the entry: expression, condition, names, values.
_Update = tuple[str, str, dict[str, str], dict[str, Any]]


class DynamoDBWaitlistRepository:
    """One clinic's waitlist entries, and their offers' holds, in the one table."""

    def __init__(self, table_name: str, client: TableClient = None, *, clinic_id: str) -> None:
        self._table = Table(table_name, client)
        self._clinic = clinic_id

    def add(self, entry: WaitlistEntry) -> None:
        """Store a new entry with one PutItem (joining records no event)."""
        require_clinic(self._clinic, entry.clinic_id, "a waitlist entry")
        if entry.events:
            raise ValueError("a new waitlist entry carries no events")
        item = waitlist_to_item(entry)
        try:
            self._table.put(item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as e:
            if not is_condition_failure(e):
                raise
            # As the memory twin: an id taken is an error, even by the same entry (ids are
            # new per join, so only a retried write whose answer was lost meets its own).
            raise _exists(entry) from e

    def get(self, waitlist_id: str) -> WaitlistEntry | None:
        """The entry (one strongly consistent GetItem), or None."""
        item = self._table.get(waitlist_pk(self._clinic, waitlist_id), WAITLIST_SK)
        return waitlist_from_item(item) if item is not None else None

    def list_by_doctor(
        self, doctor_id: str, limit: int, cursor: Cursor, *, waiting: bool = False
    ) -> Page[WaitlistEntry]:
        """A doctor's entries, oldest first: a Query of gsi1 from after the cursor.

        `waiting` filters on the stored status (gsi1 projects every attribute); the Query goes
        on past filtered-out items until the page is full, as long as the memory backend's.
        The cursor is the memory backend's (creation instant and id): a key condition, so it
        needs no item of the table to point at.
        """
        after = _position(cursor) if cursor is not None else None
        names = {"#pk": "gsi1pk"}
        values: dict[str, Any] = {":pk": waitlist_partition(self._clinic, doctor_id)}
        condition = "#pk = :pk"
        if after is not None:
            names["#sk"] = "gsi1sk"
            values[":after"] = after
            condition += " AND #sk > :after"
        request: dict[str, Any] = {"IndexName": "gsi1", "ScanIndexForward": True}
        if waiting:
            names["#status"] = "status"
            values[":waiting"] = str(WaitStatus.WAITING)
            request["FilterExpression"] = "#status = :waiting"
        found = self._table.query_up_to(
            # One item more than the page says, without a second call, whether more follow.
            limit + 1,
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=attribute_values(values),
            **request,
        )
        items = [waitlist_from_item(i) for i in found[:limit]]
        last = items[-1] if items and len(found) > limit else None
        return Page(items, entry_cursor(last) if last is not None else None)

    def holds(self, doctor_id: str, start_from: datetime, start_to: datetime) -> Sequence[Offer]:
        """The offers holding a doctor's time with start in [start_from, start_to): gsi2."""
        found = held_entries(self._table, self._clinic, doctor_id, start_from, start_to)
        return [e.offer for e in found if e.offer is not None]

    def offered(self) -> Sequence[WaitlistEntry]:
        """Every entry with an offer, soonest expiry first: the clinic's gsi2 partition."""
        items = self._table.query_all(
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk",
            ExpressionAttributeValues=attribute_values({":pk": hold_partition(self._clinic)}),
        )
        found = [e for e in map(waitlist_from_item, items) if e.offer is not None]
        return sorted(found, key=_expiry)

    def offer(self, previous: WaitlistEntry, current: WaitlistEntry, schedule: Schedule) -> None:
        """Hold the offer's cells with the entry's change and its event: one transaction.

        The doctor's cells are taken (free, with the doctor's buffer around them), the
        patient's only checked free, the doctor's profile checked at the schedule version.
        """
        require_clinic(self._clinic, current.clinic_id, "a waitlist entry")
        offer = current.held_offer()
        if schedule.doctor.doctor_id != current.doctor_id:
            raise ScheduleChanged(current.doctor_id)
        tx = Transaction(self._table.table_name)
        self._update(tx, previous, current)
        check_schedule(tx, self._clinic, current.doctor_id, schedule)
        pad = schedule.buffer
        start, end = offer.start, offer.end
        buffer = cells(start - pad, start) + cells(end, end + pad) if pad else ()
        # The buffer and the patient's time must be free, but the offer does not hold them.
        clear = self._time(Role.DOCTOR_GUARD, current.doctor_id, buffer) | self._time(
            Role.PATIENT_GUARD, current.patient.key, cells(start, end)
        )
        guards = GuardChanges()
        guards.add(tx, owner_tag(offer.appointment_id), {}, self._hold(current, offer), clear)
        tx.put_events(current.events)
        try:
            self._table.transact(tx)
        except Cancelled as cancelled:
            if tx.first(cancelled, Role.WAITLIST):
                raise _moved(previous, cancelled) from None
            refuse_add(tx, guards, cancelled, None)
        current.collect_new_events()

    def accept(
        self,
        previous: WaitlistEntry,
        current: WaitlistEntry,
        appointment: Appointment,
        schedule: Schedule,
    ) -> None:
        """Book the appointment over its held cells and store the booked entry: one transaction.

        The entry's Update is conditioned on its version and on the offer being live at
        `current.updated_at`; the doctor's cells are already the appointment's, so only the
        patient's are taken (and the buffer checked free).
        """
        require_clinic(self._clinic, current.clinic_id, "a waitlist entry")
        require_clinic(self._clinic, appointment.clinic_id, "an appointment")
        if schedule.doctor.doctor_id != appointment.doctor_id:
            raise ScheduleChanged(appointment.doctor_id)
        tx = Transaction(self._table.table_name)
        self._update(tx, previous, current, live_at=current.updated_at)
        tx.put(appointment_to_item(appointment), Role.APPOINTMENT, "attribute_not_exists(pk)")
        check_schedule(tx, self._clinic, appointment.doctor_id, schedule)
        offer = previous.offer
        # Only the offer's own appointment finds its cells held; any other must take them.
        ours = offer is not None and offer.appointment_id == appointment.appointment_id
        old = self._hold(previous, offer) if offer is not None and ours else {}
        guards = GuardChanges()
        tag = owner_tag(appointment.appointment_id)
        guards.add(tx, tag, old, held(appointment), around(appointment, schedule.buffer))
        tx.put_events(appointment.events)
        tx.put_events(current.events)
        try:
            self._table.transact(tx)
        except Cancelled as cancelled:
            _refuse_accept(tx, guards, cancelled, previous)
        appointment.collect_new_events()
        current.collect_new_events()

    def release(self, previous: WaitlistEntry, current: WaitlistEntry, offer: Offer) -> None:
        """Free the offer's cells and store the entry without it, with its events: one transaction.

        A guard DynamoDB already deleted by its TTL frees nothing and is no refusal.
        """
        require_clinic(self._clinic, current.clinic_id, "a waitlist entry")
        tx = Transaction(self._table.table_name)
        self._update(tx, previous, current)
        guards = GuardChanges()
        guards.add(tx, owner_tag(offer.appointment_id), self._hold(current, offer), {})
        tx.put_events(current.events)
        try:
            self._table.transact(tx)
        except Cancelled as cancelled:
            # A newer version, or cells that are not the offer's: the stored state is not
            # `previous` either way (the version check makes the second impossible).
            raise _moved(previous, cancelled) from None
        current.collect_new_events()

    def save(self, previous: WaitlistEntry, current: WaitlistEntry) -> None:
        """Store a change that holds no time: one conditioned UpdateItem (with events, a tx)."""
        require_clinic(self._clinic, current.clinic_id, "a waitlist entry")
        if current.events:
            tx = Transaction(self._table.table_name)
            self._update(tx, previous, current)
            tx.put_events(current.events)
            try:
                self._table.transact(tx)
            except Cancelled as cancelled:
                raise _moved(previous, cancelled) from None
            current.collect_new_events()
            return
        expression, condition, names, values = _entry_update(previous, current)
        try:
            self._table.update(
                *self._keys(current),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values(values),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise
            stored: Any = e.response.get("Item")
            found = from_attribute_values(stored) if isinstance(stored, dict) else None
            raise _conflict(previous, found) from e

    def _keys(self, entry: WaitlistEntry) -> tuple[str, str]:
        return waitlist_pk(self._clinic, entry.waitlist_id), WAITLIST_SK

    def _update(
        self,
        tx: Transaction,
        previous: WaitlistEntry,
        current: WaitlistEntry,
        *,
        live_at: datetime | None = None,
    ) -> None:
        """Add the entry's Update (always the transaction's first item, `_ENTRY`)."""
        if len(tx):
            raise ValueError("the entry's Update goes first: its refusal is read at index 0")
        expression, condition, names, values = _entry_update(previous, current, live_at=live_at)
        pk, sk = self._keys(current)
        tx.update(pk, sk, Role.WAITLIST, expression, condition, names, values)

    def _hold(self, entry: WaitlistEntry, offer: Offer) -> Held:
        """The doctor's cells an offer holds, by guard: the doctor half of its appointment's."""
        return self._time(Role.DOCTOR_GUARD, entry.doctor_id, cells(offer.start, offer.end))

    def _time(self, role: Role, owner: str, spans: Sequence[datetime]) -> Held:
        # The very layout `held` and `around` use for an appointment's cells.
        return by_day(role, self._clinic, owner, spans)


def held_entries(
    table: Table, clinic_id: str, doctor_id: str, start_from: datetime, start_to: datetime
) -> list[WaitlistEntry]:
    """The entries holding a doctor's time with start in [start_from, start_to), by start.

    A Query of gsi2 (eventually consistent): what the index shows, as the items say it.
    """
    if start_to <= start_from:
        return []  # an empty range; BETWEEN would reject low > high
    items = table.query_all(
        IndexName="gsi2",
        KeyConditionExpression="gsi2pk = :pk AND gsi2sk BETWEEN :low AND :high",
        ExpressionAttributeValues=attribute_values(
            {
                ":pk": hold_partition(clinic_id),
                ":low": hold_position(doctor_id, start_from),
                # A bare `<doctor>#<instant>` sorts before each id of that instant: exclusive.
                ":high": hold_position(doctor_id, start_to),
            }
        ),
        ScanIndexForward=True,
    )
    found = map(waitlist_from_item, items)
    return [e for e in found if e.offer is not None and start_from <= e.offer.start < start_to]


def _entry_update(
    previous: WaitlistEntry, current: WaitlistEntry, *, live_at: datetime | None = None
) -> _Update:
    """The Update from `previous` to `current`, only while the entry is at `previous.version`.

    Only what changed is written (an ended offer's attributes and hold are REMOVEd).
    `live_at`: also only while the stored offer has not expired then.
    """
    before, after = waitlist_to_item(previous), waitlist_to_item(current)
    changed = {k: v for k, v in after.items() if k not in ("pk", "sk") and before.get(k) != v}
    changed["version"] = current.version
    dropped = [k for k in before if k not in after]
    names = {f"#a{i}": k for i, k in enumerate([*changed, *dropped])}
    expression = "SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(changed)))
    if dropped:
        expression += " REMOVE " + ", ".join(f"#a{len(changed) + i}" for i in range(len(dropped)))
    values: dict[str, Any] = {f":v{i}": v for i, v in enumerate(changed.values())}
    names["#version"] = "version"
    values[":expected"] = previous.version
    condition = "#version = :expected"
    if live_at is not None:
        names["#expires"] = OFFER_EXPIRES
        values[":now"] = instant(live_at)
        condition += " AND #expires > :now"
    return expression, condition, names, values


def _refuse_accept(
    tx: Transaction, guards: GuardChanges, cancelled: Cancelled, previous: WaitlistEntry
) -> NoReturn:
    if tx.first(cancelled, Role.WAITLIST):
        # The refused entry as stored says which: a newer version, or an offer run out.
        stored = cancelled_item(cancelled.error, _ENTRY)
        if stored is None or stored.get("version") != previous.version:
            raise _conflict(previous, stored) from None
        raise OfferExpired("the offer expired") from None
    refuse_add(tx, guards, cancelled, None)


def _moved(previous: WaitlistEntry, cancelled: Cancelled) -> VersionConflict:
    return _conflict(previous, cancelled_item(cancelled.error, _ENTRY))


def _conflict(previous: WaitlistEntry, stored: Mapping[str, Any] | None) -> VersionConflict:
    return VersionConflict(
        "the waitlist entry changed meanwhile",
        expected=previous.version,
        actual=stored.get("version") if stored is not None else None,
    )


def _exists(entry: WaitlistEntry) -> ValueError:
    return ValueError(f"waitlist entry {entry.waitlist_id} already exists")


def _expiry(entry: WaitlistEntry) -> datetime:
    return entry.offer.expires_at if entry.offer is not None else entry.updated_at


def _position(cursor: Mapping[str, Any]) -> str:
    """The gsi1 sort key a cursor this repository made points after, or InvalidCursor."""
    when, entry_id = entry_position(cursor)
    return f"{instant(when)}#{entry_id}"
