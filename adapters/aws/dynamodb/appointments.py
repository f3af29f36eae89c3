"""The appointment repository: an appointment, its cells, its key and its events, all at once.

Every guard is a condition inside one `TransactWriteItems`: the appointment item, its cell
locks (`cells`), its idempotency key and its outbox events commit together or not at all. A
refusal by a stale cell is repaired once (`cell_repair`) before the caller is told the time is
taken. A reschedule that frees more old cells than fit in the transaction frees the rest right
after, each delete conditioned on the cell still belonging to this appointment.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

from adapters.aws.dynamodb.cell_repair import commit_healing
from adapters.aws.dynamodb.cells import (
    free,
    free_leftovers,
    held_cells,
    take_moved,
    take_new,
)
from adapters.aws.dynamodb.items import (
    appointment_from_item,
    appointment_to_item,
    idempotency_from_item,
    idempotency_to_item,
)
from adapters.aws.dynamodb.keys import (
    APPOINTMENT_SK,
    IDEMPOTENCY_SK,
    TRANSACTION_LIMIT,
    appointment_pk,
    country_status_partition,
    doctor_partition,
    idempotency_pk,
    instant,
)
from adapters.aws.dynamodb.table import Table, check_cursor
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction, cancelled_item
from domain.appointment import Appointment, Status
from domain.errors import (
    IdempotencyKeyTaken,
    PatientDoubleBooked,
    SlotUnavailable,
    VersionConflict,
)
from ports.repositories import Cursor, IdempotencyRecord, Page, Window

if TYPE_CHECKING:
    from adapters.aws.dynamodb.table import TableClient

# Which refusal is reported when several conditions failed at once.
ADD_PRECEDENCE = (Role.IDEMPOTENCY, Role.DOCTOR_CELL, Role.PATIENT_CELL)
UPDATE_PRECEDENCE = (Role.APPOINTMENT, Role.DOCTOR_CELL, Role.PATIENT_CELL)


class DynamoDBAppointmentRepository:
    """Appointments, their cell locks, idempotency keys and outbox events in one table."""

    def __init__(self, table_name: str, client: TableClient = None) -> None:
        self._table = Table(table_name, client)

    @property
    def table_name(self) -> str:
        """The DynamoDB table this repository uses."""
        return self._table.table_name

    def add(self, appointment: Appointment, idempotency: IdempotencyRecord | None) -> None:
        """Store a new appointment with its cells, key and events in one transaction."""
        tx = Transaction(self._table.table_name)
        if idempotency is not None:
            # First: if a twin with this key booked the same time, its key must be what we
            # report, not the cells it holds.
            tx.put(
                idempotency_to_item(idempotency, appointment.created_at),
                Role.IDEMPOTENCY,
                "attribute_not_exists(pk)",
            )
        tx.put(appointment_to_item(appointment), Role.APPOINTMENT, "attribute_not_exists(pk)")
        take_new(tx, appointment)
        tx.put_events(appointment.events)
        commit_healing(
            self._table,
            tx,
            ADD_PRECEDENCE,
            appointment.appointment_id,
            lambda cancelled: _refuse_add(tx, cancelled, idempotency),
        )
        appointment.collect_new_events()

    def update(self, previous: Appointment, current: Appointment) -> None:
        """Replace `previous` by `current` on an unchanged version, moving cells atomically."""
        me = current.appointment_id
        old, new = held_cells(previous), held_cells(current)
        tx = Transaction(self._table.table_name)
        _versioned_update(tx, previous, current)
        take_moved(tx, me, old, new)
        tx.put_events(current.events)
        if len(tx) > TRANSACTION_LIMIT:  # pragma: no cover - 1 + 96 + a few events
            raise ValueError("too many new cells and events for one transaction")
        freed = sorted(old.keys() - new.keys())
        now, later = freed[: TRANSACTION_LIMIT - len(tx)], freed[TRANSACTION_LIMIT - len(tx) :]
        for pk in now:
            free(tx, pk, old[pk][0], me)
        commit_healing(
            self._table,
            tx,
            UPDATE_PRECEDENCE,
            me,
            lambda cancelled: _refuse_update(tx, cancelled, previous),
        )
        current.collect_new_events()
        if later:
            free_leftovers(self._table, me, later, old)

    def get(self, appointment_id: str) -> Appointment | None:
        """The appointment (strongly consistent read), or None."""
        item = self._table.get(appointment_pk(appointment_id), APPOINTMENT_SK)
        return appointment_from_item(item) if item is not None else None

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record stored under `key` (strongly consistent read), or None."""
        item = self._table.get(idempotency_pk(key), IDEMPOTENCY_SK)
        return idempotency_from_item(item) if item is not None else None

    def list_by_doctor(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page:
        """A doctor's appointments with start in [start_from, start_to): one Query on gsi1."""
        return self._list("gsi1", doctor_partition(doctor_id), start_from, start_to, limit, cursor)

    def list_by_country_status(
        self, country: str, status: Status, window: Window, limit: int, cursor: Cursor
    ) -> Page:
        """Appointments of a country in a status, start in the window: one Query on gsi2."""
        partition = country_status_partition(country, status)
        return self._list("gsi2", partition, window.start_from, window.start_to, limit, cursor)

    def _list(
        self,
        index: str,
        partition: str,
        start_from: datetime | None,
        start_to: datetime | None,
        limit: int,
        cursor: Cursor,
    ) -> Page:
        low = instant(start_from) if start_from is not None else None
        high = instant(start_to) if start_to is not None else None
        if low is not None and high is not None and high <= low:
            if cursor is not None:
                check_cursor(cursor, f"{index}pk", f"{index}sk", partition, None, None)
            return Page([], None)  # an empty range; BETWEEN would reject low > high
        items, next_cursor = self._table.query_page(index, partition, low, high, limit, cursor)
        return Page([appointment_from_item(item) for item in items], next_cursor)

    def record_reminder(self, previous: Appointment, current: Appointment) -> bool:
        """Store `reminded_start` and the ReminderDue event once per start, in one transaction."""
        start = current.snapshot().get("reminded_start")
        if start is None:
            return False  # nothing to record
        tx = Transaction(self._table.table_name)
        tx.update(
            appointment_pk(current.appointment_id),
            APPOINTMENT_SK,
            Role.APPOINTMENT,
            "SET #reminded = :start",
            "#version = :version AND (attribute_not_exists(#reminded) OR #reminded <> :start)",
            {"#reminded": "reminded_start", "#version": "version"},
            {":start": start, ":version": previous.version},
        )
        tx.put_events(current.events)
        try:
            self._table.transact(tx)
        except Cancelled:
            return False
        current.collect_new_events()
        return True


def _refuse_add(
    tx: Transaction, cancelled: Cancelled, idempotency: IdempotencyRecord | None
) -> NoReturn:
    failed = tx.first(cancelled, *ADD_PRECEDENCE)
    if failed is Role.IDEMPOTENCY and idempotency is not None:
        raise IdempotencyKeyTaken(idempotency.key) from None
    _refuse_cells(failed)
    raise cancelled.error from None  # the appointment id itself exists: a bug


def _refuse_update(tx: Transaction, cancelled: Cancelled, previous: Appointment) -> NoReturn:
    _refuse_cells(tx.first(cancelled, *UPDATE_PRECEDENCE))
    stored = cancelled_item(cancelled.error, 0)
    # Also a freed cell held by someone else: the stored state is not `previous`.
    raise VersionConflict(
        "the appointment changed meanwhile",
        expected=previous.version,
        actual=stored.get("version") if stored is not None else None,
    ) from None


def _refuse_cells(failed: Role | None) -> None:
    """Raise the refusal of a taken doctor's or patient's cell, if that is what failed."""
    if failed is Role.DOCTOR_CELL:
        raise SlotUnavailable.taken() from None
    if failed is Role.PATIENT_CELL:
        raise PatientDoubleBooked.taken() from None


def _versioned_update(tx: Transaction, previous: Appointment, current: Appointment) -> None:
    # Only what changed is written: a reminder recorded meanwhile (which keeps the
    # version) is not overwritten by the stale `reminded_start` of `previous`.
    before, after = appointment_to_item(previous), appointment_to_item(current)
    changed = {k: v for k, v in after.items() if k not in ("pk", "sk") and before.get(k) != v}
    changed["version"] = current.version
    dropped = [k for k in before if k not in after]
    names = {f"#a{i}": k for i, k in enumerate([*changed, *dropped])}
    by_name = {k: n for n, k in names.items()}
    expression = "SET " + ", ".join(f"{by_name[k]} = :v{i}" for i, k in enumerate(changed))
    if dropped:
        expression += " REMOVE " + ", ".join(by_name[k] for k in dropped)
    values = {f":v{i}": v for i, v in enumerate(changed.values())}
    names["#version"] = "version"
    values[":expected"] = previous.version
    tx.update(
        appointment_pk(current.appointment_id),
        APPOINTMENT_SK,
        Role.APPOINTMENT,
        expression,
        "#version = :expected",
        names,
        values,
    )
