"""The appointment repository: an appointment, its day guards, its key and its events at once.

Every guard is a condition inside one `TransactWriteItems`: the appointment item, the day
guards whose cells it takes or frees (`guards`), its idempotency key and its outbox events
commit together or not at all. One transaction per change, whatever the appointment's length:
at most one guard item per party and guard day it touches, before and after. A refusal is read
from the transaction's own cancellation reasons; nothing is read again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, NoReturn

from adapters.aws.dynamodb.guards import GuardChanges, around, held, owner_tag
from adapters.aws.dynamodb.items import (
    appointment_from_item,
    appointment_to_item,
    idempotency_from_item,
    idempotency_to_item,
)
from adapters.aws.dynamodb.keys import (
    APPOINTMENT_SK,
    DOCTOR_SK,
    IDEMPOTENCY_SK,
    SCHEDULE_VERSION,
    appointment_pk,
    country_status_partition,
    doctor_partition,
    doctor_pk,
    idempotency_pk,
    instant,
)
from adapters.aws.dynamodb.table import Table, check_cursor
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction, cancelled_item
from domain.appointment import Appointment, Status
from domain.clinics import require_clinic
from domain.errors import (
    IdempotencyKeyTaken,
    PatientDoubleBooked,
    ScheduleChanged,
    SlotUnavailable,
    VersionConflict,
)
from domain.rules import Schedule
from ports.repositories import Cursor, IdempotencyRecord, Page, Window

if TYPE_CHECKING:
    from adapters.aws.dynamodb.table import TableClient


class DynamoDBAppointmentRepository:
    """Appointments, their day guards, idempotency keys and outbox events in one table."""

    def __init__(self, table_name: str, client: TableClient = None, *, clinic_id: str) -> None:
        self._table = Table(table_name, client)
        self._clinic = clinic_id

    @property
    def table_name(self) -> str:
        """The DynamoDB table this repository uses."""
        return self._table.table_name

    def add(
        self,
        appointment: Appointment,
        idempotency: IdempotencyRecord | None,
        schedule: Schedule,
    ) -> None:
        """Store a new appointment with its guards, key and events in one transaction.

        The doctor's profile is a ConditionCheck at the schedule version the rules were
        checked against: a container's cached schedule books in this one round trip, and a
        stale one is refused (ScheduleChanged) instead of booking into new time off.
        """
        require_clinic(self._clinic, appointment.clinic_id, "an appointment")
        tx = Transaction(self._table.table_name)
        if idempotency is not None:
            # First: if a twin with this key booked the same time, its key must be what we
            # report, not the cells it holds.
            tx.put(
                idempotency_to_item(self._clinic, idempotency, appointment.created_at),
                Role.IDEMPOTENCY,
                "attribute_not_exists(pk)",
            )
        tx.put(appointment_to_item(appointment), Role.APPOINTMENT, "attribute_not_exists(pk)")
        check_schedule(tx, self._clinic, appointment.doctor_id, schedule)
        guards = GuardChanges()
        tag, now_held = owner_tag(appointment.appointment_id), held(appointment)
        guards.add(tx, tag, {}, now_held, around(appointment, schedule.buffer))
        tx.put_events(appointment.events)
        try:
            self._table.transact(tx)
        except Cancelled as cancelled:
            refuse_add(tx, guards, cancelled, idempotency)
        appointment.collect_new_events()

    def update(
        self, previous: Appointment, current: Appointment, schedule: Schedule | None = None
    ) -> None:
        """Replace `previous` by `current` on an unchanged version, moving its time atomically."""
        require_clinic(self._clinic, current.clinic_id, "an appointment")
        tx = Transaction(self._table.table_name)
        _versioned_update(tx, previous, current)
        if schedule is not None:
            check_schedule(tx, self._clinic, current.doctor_id, schedule)
        guards = GuardChanges()
        clear = around(current, schedule.buffer) if schedule is not None else {}
        tag = owner_tag(current.appointment_id)
        guards.add(tx, tag, held(previous), held(current), clear)
        tx.put_events(current.events)
        try:
            self._table.transact(tx)
        except Cancelled as cancelled:
            _refuse_update(tx, guards, cancelled, previous)
        current.collect_new_events()

    def get(self, appointment_id: str) -> Appointment | None:
        """The appointment (strongly consistent read), or None."""
        item = self._table.get(appointment_pk(self._clinic, appointment_id), APPOINTMENT_SK)
        return appointment_from_item(item) if item is not None else None

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record stored under `key` (strongly consistent read), or None."""
        item = self._table.get(idempotency_pk(self._clinic, key), IDEMPOTENCY_SK)
        return idempotency_from_item(item) if item is not None else None

    def list_by_doctor(
        self, doctor_id: str, start_from: datetime, start_to: datetime, limit: int, cursor: Cursor
    ) -> Page[Appointment]:
        """A doctor's appointments with start in [start_from, start_to): one Query on gsi1."""
        partition = doctor_partition(self._clinic, doctor_id)
        return self._list("gsi1", partition, start_from, start_to, limit, cursor)

    def list_by_country_status(
        self,
        country: str,
        status: Status,
        window: Window,
        limit: int,
        cursor: Cursor,
        *,
        at_risk: bool = False,
    ) -> Page[Appointment]:
        """Appointments of a country in a status, start in the window: a Query on gsi2.

        `at_risk` filters on the item's flag (gsi2 projects every attribute); the Query goes
        on until the page is full, so pages are as long as the memory backend's.
        """
        partition = country_status_partition(self._clinic, country, status)
        return self._list(
            "gsi2", partition, window.start_from, window.start_to, limit, cursor, at_risk=at_risk
        )

    def _list(
        self,
        index: str,
        partition: str,
        start_from: datetime | None,
        start_to: datetime | None,
        limit: int,
        cursor: Cursor,
        *,
        at_risk: bool = False,
    ) -> Page[Appointment]:
        low = instant(start_from) if start_from is not None else None
        high = instant(start_to) if start_to is not None else None
        if low is not None and high is not None and high <= low:
            if cursor is not None:
                check_cursor(cursor, f"{index}pk", f"{index}sk", partition, None, None)
            return Page([], None)  # an empty range; BETWEEN would reject low > high
        only = {"at_risk": True} if at_risk else None
        items, next_cursor = self._table.query_page(
            index, partition, low, high, limit, cursor, only=only
        )
        return Page([appointment_from_item(item) for item in items], next_cursor)

    def record_cadence(self, previous: Appointment, current: Appointment) -> bool:
        """Store a cadence step and its event once per start time, in one transaction."""
        require_clinic(self._clinic, current.clinic_id, "an appointment")
        new = sorted(current.sent_steps - previous.sent_steps)
        stored = current.snapshot()
        if len(new) != 1 or "cadence_start" not in stored:
            return False  # nothing (or not one step) to record
        sets = "#cs = :start, #sent = :sent"
        update = (
            f"SET {sets}, #risk = :risk REMOVE #reminded"
            if current.at_risk
            else f"SET {sets} REMOVE #risk, #reminded"
        )
        values: dict[str, object] = {
            ":start": stored["cadence_start"],
            ":sent": stored["cadence_sent"],
            ":step": str(new[0]),
            ":version": previous.version,
        }
        if current.at_risk:
            values[":risk"] = True
        tx = Transaction(self._table.table_name)
        tx.update(
            appointment_pk(self._clinic, current.appointment_id),
            APPOINTMENT_SK,
            Role.APPOINTMENT,
            update,
            # The step is new for this start: a second tick (or a retry) records nothing.
            "#version = :version AND (attribute_not_exists(#cs) OR #cs <> :start "
            "OR NOT contains(#sent, :step))",
            {
                "#cs": "cadence_start",
                "#sent": "cadence_sent",
                "#risk": "at_risk",
                "#reminded": "reminded_start",
                "#version": "version",
            },
            values,
        )
        tx.put_events(current.events)
        try:
            self._table.transact(tx)
        except Cancelled:
            return False
        current.collect_new_events()
        return True


def refuse_add(
    tx: Transaction,
    guards: GuardChanges,
    cancelled: Cancelled,
    idempotency: IdempotencyRecord | None,
) -> NoReturn:
    """Raise what a refused booking's cancellation reasons say: the key, the schedule, a cell."""
    if idempotency is not None and tx.first(cancelled, Role.IDEMPOTENCY):
        raise IdempotencyKeyTaken(idempotency.key) from None
    if tx.first(cancelled, Role.SCHEDULE):
        raise ScheduleChanged() from None
    _refuse_taken(guards.refusal(tx, cancelled))
    raise cancelled.error from None  # the appointment id itself exists: a bug


def _refuse_update(
    tx: Transaction, guards: GuardChanges, cancelled: Cancelled, previous: Appointment
) -> NoReturn:
    stored = cancelled_item(cancelled.error, 0)
    if not tx.first(cancelled, Role.APPOINTMENT):
        if tx.first(cancelled, Role.SCHEDULE):
            raise ScheduleChanged() from None
        _refuse_taken(guards.refusal(tx, cancelled))
    # A newer version, or a guard that says this appointment does not hold what `previous`
    # held: either way the stored state is not `previous`.
    raise VersionConflict(
        "the appointment changed meanwhile",
        expected=previous.version,
        actual=stored.get("version") if stored is not None else None,
    ) from None


def check_schedule(tx: Transaction, clinic_id: str, doctor_id: str, schedule: Schedule) -> None:
    """Add the ConditionCheck that the doctor is still at `schedule.version`."""
    if schedule.doctor.doctor_id != doctor_id:
        raise ValueError("a booking is checked against its own doctor's schedule")
    condition, names, values = schedule_condition(schedule.version)
    tx.check(doctor_pk(clinic_id, doctor_id), DOCTOR_SK, Role.SCHEDULE, condition, names, values)


def schedule_condition(version: int) -> tuple[str, dict[str, str], dict[str, int] | None]:
    """The condition that a doctor's profile exists at schedule `version`."""
    names = {"#sv": SCHEDULE_VERSION}
    if version == 0:
        # A profile stored before schedules had versions: version 0 until its first change.
        return "attribute_exists(pk) AND attribute_not_exists(#sv)", names, None
    return "#sv = :sv", names, {":sv": version}


def _refuse_taken(failed: Role | None) -> None:
    """Raise the refusal of a doctor's or a patient's taken time, if that is what failed."""
    if failed is Role.DOCTOR_GUARD:
        raise SlotUnavailable.taken() from None
    if failed is Role.PATIENT_GUARD:
        raise PatientDoubleBooked.taken() from None


def _versioned_update(tx: Transaction, previous: Appointment, current: Appointment) -> None:
    # Only what changed is written: a cadence step recorded meanwhile (which keeps the
    # version) is not overwritten by the stale marks of `previous`.
    before, after = appointment_to_item(previous), appointment_to_item(current)
    changed = {k: v for k, v in after.items() if k not in ("pk", "sk") and before.get(k) != v}
    changed["version"] = current.version
    dropped = [k for k in before if k not in after]
    if not current.at_risk and "at_risk" not in dropped:
        # Every change clears the flag, also one the cadence set after `previous` was read.
        dropped.append("at_risk")
    names = {f"#a{i}": k for i, k in enumerate([*changed, *dropped])}
    by_name = {k: n for n, k in names.items()}
    expression = "SET " + ", ".join(f"{by_name[k]} = :v{i}" for i, k in enumerate(changed))
    if dropped:
        expression += " REMOVE " + ", ".join(by_name[k] for k in dropped)
    values = {f":v{i}": v for i, v in enumerate(changed.values())}
    names["#version"] = "version"
    values[":expected"] = previous.version
    tx.update(
        appointment_pk(current.clinic_id, current.appointment_id),
        APPOINTMENT_SK,
        Role.APPOINTMENT,
        expression,
        "#version = :expected",
        names,
        values,
    )
