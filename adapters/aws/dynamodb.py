"""DynamoDB adapters: one table, every guard a condition inside one transaction.

Items (`pk` / `sk` are the table keys; `gsi1*` / `gsi2*` the two GSIs of `dynamodb.tf`):

- appointment `APPT#<id>` / `APPT`: the snapshot with `version`; `gsi1pk=DOCTOR#<doctor>`,
  `gsi1sk=<start>#<id>` (a doctor's days) and `gsi2pk=COUNTRY#<cc>#STATUS#<status>`,
  `gsi2sk=<start>#<id>` (country-status lists).
- doctor cell `DOCSLOT#<doctor>#<cell>` / `LOCK`: `appointment_id`, `expires_at` (TTL, the
  cell's end + 1 day).
- patient cell `PATSLOT#<patient key>#<cell>` / `LOCK`: the same; the key is a hash of the
  phone, never the phone.
- idempotency key `IDEM#<key>` / `IDEM`: `fingerprint`, `appointment_id`, `expires_at`
  (booking + 24 h; DynamoDB deletes within a day or two after, so a key holds at least 24 h).
- outbox event `OUTBOX#<event id>` / `EVENT`: `envelope` (the JSON envelope), `outbox=1` (a
  marker; the relay's stream filter matches INSERTs whose `pk` starts `OUTBOX#`),
  `gsi1pk=OUTBOX`, `gsi1sk=<occurred_at>#<event id>` (pending events oldest first, no Scan).
- doctor `DOCTOR#<id>` / `PROFILE`; booking request `REQ#<id>` / `REQ`.
- handled-event marker `DONE#<consumer>:<event id>` / `DONE`: `expires_at` (a week later).

Instants in sort keys are fixed-width UTC (`2026-12-02T14:00:00.000000Z`) so that string
order is time order and `<start>#<id>` sorts after the bare `<start>` used as a bound.

Uniqueness never rests on a GSI (they are eventually consistent): a doctor's or a patient's
time is a set of cell items written with `attribute_not_exists(pk)` in the same
`TransactWriteItems` as the appointment, its idempotency key and its outbox events.

A reschedule of a long appointment to a disjoint time can touch more than the 100 items a
transaction allows (2 x 48 cells freed, 2 x 48 taken, the appointment and its event). Then the
first transaction holds the appointment, the new cells, the events and as many old-cell
deletes as fit; the remaining old cells are deleted right after in follow-up transactions,
each delete conditioned on the cell still belonging to this appointment.

Stale cells heal at booking time. A cell is stale when its owner appointment is gone, no
longer active, or no longer covers that cell (another doctor, patient or time). When a booking
or a move is refused because one of its cells is taken, the adapter reads every cell it asked
for (one consistent BatchGetItem) and each owner (a consistent GetItem); if every taken cell is
stale, it deletes them (one transaction per owner: a ConditionCheck that the owner is still the
version it read, or still missing, plus deletes conditioned on `appointment_id = <owner>`) and
sends the original transaction once more. Why: a crash or a failure between the two
transactions of a long move, or any other orphan lock, would otherwise hold that time until
its TTL; this way it is repaired the first time someone needs that time. If any taken cell
belongs to an appointment that still covers it, the caller gets `slot_unavailable` /
`patient_double_booked` as before. The happy path makes no extra call.

A transaction cancelled only by contention (`TransactionConflict`) wrote nothing and is sent
again up to twice, after a few jittered milliseconds, before the caller gets
`TemporarilyUnavailable`. Throttling, 5xx, timeouts and connection errors become
`TemporarilyUnavailable` at once (botocore has already retried them); any other error is a bug
and is re-raised as is.

botocore already makes retried `TransactWriteItems` idempotent: it generates one
`ClientRequestToken` per call and reuses it on each retry, so a commit whose answer was lost
is not replayed as a (false) condition failure.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, NoReturn

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from adapters.aws.client import (
    BATCH_RETRY,
    CLIENT_CONFIG,
    RETRYABLE_CODES,
    TRANSACTION_RETRY,
    LazyClient,
    error_code,
    is_condition_failure,
    is_retryable,
    lazy,
    translate_errors,
)
from domain.appointment import Appointment, Status
from domain.booking_request import BookingRequest, RequestStatus
from domain.commands import BookAppointment
from domain.errors import (
    IdempotencyKeyTaken,
    InvalidCursor,
    PatientDoubleBooked,
    SlotUnavailable,
    TemporarilyUnavailable,
    VersionConflict,
    ZoneChanged,
)
from domain.events import Event, event_from_envelope
from domain.schedule import CELL_MINUTES, Doctor, WorkingHours
from ports.repositories import IdempotencyRecord, Page

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
        UniversalAttributeValueTypeDef,
        WriteRequestTypeDef,
    )

log = logging.getLogger(__name__)

TRANSACTION_LIMIT: Final = 100
BATCH_WRITE_LIMIT: Final = 25
CELL_TTL: Final = timedelta(days=1)
IDEMPOTENCY_TTL: Final = timedelta(hours=24)
OUTBOX_PARTITION: Final = "OUTBOX"

# Cancellation reasons of a transaction that say "contended or throttled", not "refused".
_TRANSIENT_REASONS: Final = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)
_CONDITION_FAILED: Final = "ConditionalCheckFailed"
# The roles of the cell Puts a booking or a move makes.
_CELL_ROLES: Final = frozenset({"doctor", "patient"})
BATCH_GET_LIMIT: Final = 100
_REASONS_IN_MESSAGE = re.compile(r"\[([A-Za-z, ]+)\]\s*$")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# --- errors --------------------------------------------------------------------------------


def _cancellation_reasons(error: ClientError) -> list[str]:
    reasons = error.response.get("CancellationReasons")
    if isinstance(reasons, list):
        return [str(reason.get("Code", "None")) for reason in reasons]
    # Older botocore releases only carry the reasons inside the message.
    match = _REASONS_IN_MESSAGE.search(str(error.response.get("Error", {}).get("Message", "")))
    return [part.strip() for part in match.group(1).split(",")] if match else []


def _cancelled_item(error: ClientError, index: int) -> dict[str, Any] | None:
    reasons = error.response.get("CancellationReasons")
    if isinstance(reasons, list) and index < len(reasons) and "Item" in reasons[index]:
        return _from_attribute_values(reasons[index]["Item"])
    return None


class _Cancelled(Exception):
    """A transaction refused by a condition: the reason code of each item, in item order."""

    def __init__(self, reasons: Sequence[str], error: ClientError) -> None:
        super().__init__(reasons)
        self.reasons = list(reasons)
        self.error = error

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == _CONDITION_FAILED


# --- values --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Numbers come back as Decimal; every number citas stores is an integer."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _attribute_values(item: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _from_attribute_values(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _instant(value: datetime) -> str:
    """Fixed-width UTC, so that string order is time order."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _epoch(value: datetime) -> int:
    return int(value.timestamp())


def _key(pk: str, sk: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


# --- items ---------------------------------------------------------------------------------

APPOINTMENT_SK: Final = "APPT"
LOCK_SK: Final = "LOCK"
IDEMPOTENCY_SK: Final = "IDEM"
EVENT_SK: Final = "EVENT"
DOCTOR_SK: Final = "PROFILE"
REQUEST_SK: Final = "REQ"
_KEY_ATTRIBUTES: Final = frozenset({"pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"})


def appointment_pk(appointment_id: str) -> str:
    """The partition key of an appointment item."""
    return f"APPT#{appointment_id}"


def doctor_partition(doctor_id: str) -> str:
    """The gsi1 partition of a doctor's appointments."""
    return f"DOCTOR#{doctor_id}"


def country_status_partition(country: str, status: Status) -> str:
    """The gsi2 partition of a country's appointments in one status."""
    return f"COUNTRY#{country}#STATUS#{status}"


def appointment_to_item(appointment: Appointment) -> dict[str, Any]:
    """The appointment item: its snapshot plus the keys of the table and both indexes."""
    order = f"{_instant(appointment.start)}#{appointment.appointment_id}"
    return {
        **appointment.snapshot(),
        "pk": appointment_pk(appointment.appointment_id),
        "sk": APPOINTMENT_SK,
        "gsi1pk": doctor_partition(appointment.doctor_id),
        "gsi1sk": order,
        "gsi2pk": country_status_partition(appointment.country, appointment.status),
        "gsi2sk": order,
    }


def appointment_from_item(item: Mapping[str, Any]) -> Appointment:
    """Inverse of `appointment_to_item`."""
    return Appointment.from_snapshot({k: v for k, v in item.items() if k not in _KEY_ATTRIBUTES})


def _cell_stamp(cell: datetime) -> str:
    return cell.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def doctor_cell_pk(doctor_id: str, cell: datetime) -> str:
    """The partition key of a doctor's time cell."""
    return f"DOCSLOT#{doctor_id}#{_cell_stamp(cell)}"


def patient_cell_pk(patient_key: str, cell: datetime) -> str:
    """The partition key of a patient's time cell (the key is a hash of the phone)."""
    return f"PATSLOT#{patient_key}#{_cell_stamp(cell)}"


def _cell_item(pk: str, cell: datetime, appointment_id: str) -> dict[str, Any]:
    expires = cell + timedelta(minutes=CELL_MINUTES) + CELL_TTL
    return {
        "pk": pk,
        "sk": LOCK_SK,
        "appointment_id": appointment_id,
        "expires_at": _epoch(expires),
    }


def _cells(appointment: Appointment) -> dict[str, tuple[str, datetime]]:
    """Partition key -> (kind, cell) of every cell the appointment holds; none when final."""
    if not appointment.is_active:
        return {}
    held = {
        doctor_cell_pk(appointment.doctor_id, cell): ("doctor", cell)
        for cell in appointment.doctor_cells()
    }
    held.update(
        {
            patient_cell_pk(appointment.patient.key, cell): ("patient", cell)
            for cell in appointment.patient_cells()
        }
    )
    return held


def idempotency_pk(key: str) -> str:
    """The partition key of an idempotency record."""
    return f"IDEM#{key}"


def idempotency_to_item(record: IdempotencyRecord, now: datetime) -> dict[str, Any]:
    """The idempotency item, expiring a day after the booking."""
    return {
        "pk": idempotency_pk(record.key),
        "sk": IDEMPOTENCY_SK,
        "key": record.key,
        "fingerprint": record.fingerprint,
        "appointment_id": record.appointment_id,
        "expires_at": _epoch(now + IDEMPOTENCY_TTL),
    }


def idempotency_from_item(item: Mapping[str, Any]) -> IdempotencyRecord:
    """Inverse of `idempotency_to_item`."""
    return IdempotencyRecord(
        key=item["key"], fingerprint=item["fingerprint"], appointment_id=item["appointment_id"]
    )


def outbox_pk(event_id: str) -> str:
    """The partition key of an outbox event."""
    return f"OUTBOX#{event_id}"


def event_to_item(event: Event) -> dict[str, Any]:
    """The outbox item; the relay's stream filter matches INSERTs whose `pk` starts `OUTBOX#`."""
    return {
        "pk": outbox_pk(event.event_id),
        "sk": EVENT_SK,
        "outbox": 1,
        "envelope": json.dumps(event.to_envelope(), separators=(",", ":"), sort_keys=True),
        # One index partition lists the pending events oldest first without a Scan.
        "gsi1pk": OUTBOX_PARTITION,
        "gsi1sk": f"{_instant(event.occurred_at)}#{event.event_id}",
    }


def event_from_item(item: Mapping[str, Any]) -> Event:
    """Inverse of `event_to_item`."""
    return event_from_envelope(json.loads(item["envelope"]))


def doctor_to_item(doctor: Doctor) -> dict[str, Any]:
    """The doctor's profile item."""
    return {
        "pk": f"DOCTOR#{doctor.doctor_id}",
        "sk": DOCTOR_SK,
        "doctor_id": doctor.doctor_id,
        "name": doctor.name,
        "country": doctor.country,
        "time_zone": doctor.time_zone,
        "slot_minutes": doctor.slot_minutes,
        "working_hours": doctor.working_hours.to_dict(),
    }


def doctor_from_item(item: Mapping[str, Any]) -> Doctor:
    """Inverse of `doctor_to_item`."""
    return Doctor(
        doctor_id=item["doctor_id"],
        name=item["name"],
        country=item["country"],
        time_zone=item["time_zone"],
        working_hours=WorkingHours.parse(item["working_hours"]),
        slot_minutes=int(item["slot_minutes"]),
    )


def request_pk(request_id: str) -> str:
    """The partition key of a booking request."""
    return f"REQ#{request_id}"


def request_to_item(request: BookingRequest) -> dict[str, Any]:
    """The booking request item (its events go to the outbox, not here)."""
    return {
        "pk": request_pk(request.request_id),
        "sk": REQUEST_SK,
        "request_id": request.request_id,
        "country": request.country,
        "command": request.command.to_dict(),
        "created_at": _iso(request.created_at),
        "updated_at": _iso(request.updated_at),
        "status": str(request.status),
        "appointment_id": request.appointment_id,
        "error": dict(request.error) if request.error is not None else None,
    }


def request_from_item(item: Mapping[str, Any]) -> BookingRequest:
    """Inverse of `request_to_item`."""
    return BookingRequest(
        request_id=item["request_id"],
        country=item["country"],
        command=BookAppointment.from_dict(item["command"]),
        created_at=datetime.fromisoformat(item["created_at"]),
        updated_at=datetime.fromisoformat(item["updated_at"]),
        status=RequestStatus(item["status"]),
        appointment_id=item.get("appointment_id"),
        error=dict(item["error"]) if item.get("error") is not None else None,
    )


# --- the table -----------------------------------------------------------------------------


def default_client() -> DynamoDBClient:
    """A DynamoDB client from the standard AWS environment (`AWS_ENDPOINT_URL_DYNAMODB`...)."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


class _Transaction:
    """The items of one TransactWriteItems and, for each, what its failure means."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.items: list[TransactWriteItemTypeDef] = []
        self.roles: list[str] = []

    def __len__(self) -> int:
        return len(self.items)

    def put(
        self,
        item: Mapping[str, Any],
        role: str,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _attribute_values(item)}
        if condition is not None:
            put["ConditionExpression"] = condition
        if names:
            put["ExpressionAttributeNames"] = dict(names)
        if values:
            put["ExpressionAttributeValues"] = _attribute_values(values)
        self.items.append({"Put": put})  # type: ignore[typeddict-item]
        self.roles.append(role)

    def delete(
        self, pk: str, sk: str, role: str, condition: str, values: Mapping[str, Any]
    ) -> None:
        self.items.append(
            {
                "Delete": {
                    "TableName": self.table_name,
                    "Key": _key(pk, sk),
                    "ConditionExpression": condition,
                    "ExpressionAttributeValues": _attribute_values(values),
                }
            }
        )
        self.roles.append(role)

    def update(
        self,
        pk: str,
        sk: str,
        role: str,
        expression: str,
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
    ) -> None:
        self.items.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": _key(pk, sk),
                    "UpdateExpression": expression,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": dict(names),
                    "ExpressionAttributeValues": _attribute_values(values),
                    # On a version conflict, the stored item tells which version won.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
        self.roles.append(role)

    def check(
        self,
        pk: str,
        sk: str,
        role: str,
        condition: str,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        check: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": _key(pk, sk),
            "ConditionExpression": condition,
        }
        if names:
            check["ExpressionAttributeNames"] = dict(names)
        if values:
            check["ExpressionAttributeValues"] = _attribute_values(values)
        self.items.append({"ConditionCheck": check})  # type: ignore[typeddict-item]
        self.roles.append(role)

    def cell_puts(self) -> list[str]:
        """The partition keys of the doctor and patient cells this transaction puts."""
        pks: list[str] = []
        for item, role in zip(self.items, self.roles, strict=True):
            put: Any = item.get("Put")
            if role in _CELL_ROLES and put is not None:
                pks.append(put["Item"]["pk"]["S"])
        return pks

    def first(self, cancelled: _Cancelled, *roles: str) -> str | None:
        """The first of `roles` (in that precedence) whose condition failed."""
        for role in roles:
            if any(cancelled.failed(i) for i, r in enumerate(self.roles) if r == role):
                return role
        return None


class _Table:
    """The shared plumbing: a lazy client and error translation at the adapter edge."""

    def __init__(
        self, table_name: str, client: DynamoDBClient | LazyClient[DynamoDBClient] | None
    ) -> None:
        self.table_name = table_name
        self.client: LazyClient[DynamoDBClient] = lazy(client, default_client)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with translate_errors("dynamodb"):
            found = self.client().get_item(
                TableName=self.table_name, Key=_key(pk, sk), ConsistentRead=True
            )
        item = found.get("Item")
        return _from_attribute_values(item) if item is not None else None

    def batch_get(self, pks: Sequence[str], sk: str) -> list[dict[str, Any]]:
        """The items among `(pk, sk)` that exist (strongly consistent BatchGetItem)."""
        found: list[dict[str, Any]] = []
        unique = list(dict.fromkeys(pks))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys = [_key(pk, sk) for pk in unique[start : start + BATCH_GET_LIMIT]]
            for _attempt in BATCH_RETRY:
                with translate_errors("dynamodb"):
                    answer = self.client().batch_get_item(
                        RequestItems={self.table_name: {"Keys": keys, "ConsistentRead": True}}
                    )
                items = answer.get("Responses", {}).get(self.table_name, [])
                found.extend(_from_attribute_values(item) for item in items)
                left = answer.get("UnprocessedKeys", {}).get(self.table_name)
                keys = list(left["Keys"]) if left else []
                if not keys:
                    break
            if keys:
                raise TemporarilyUnavailable(
                    "dynamodb left reads unprocessed, retry shortly", service="dynamodb"
                )
        return found

    def transact(self, tx: _Transaction) -> None:
        """Commit `tx`; raise _Cancelled if a condition refused it, 503 if contention stays."""
        if len(tx) > TRANSACTION_LIMIT:  # pragma: no cover - callers split before
            raise ValueError(f"a transaction holds at most {TRANSACTION_LIMIT} items")
        for attempt in TRANSACTION_RETRY:
            with translate_errors("dynamodb"):
                try:
                    self.client().transact_write_items(TransactItems=tx.items)
                    return
                except ClientError as e:
                    if error_code(e) != "TransactionCanceledException":
                        raise
                    reasons = _cancellation_reasons(e)
                    if _CONDITION_FAILED in reasons:
                        raise _Cancelled(reasons, e) from e
                    if not any(r in _TRANSIENT_REASONS for r in reasons):
                        raise  # e.g. a ValidationError reason: a bug, not a busy table
                    if TRANSACTION_RETRY.is_last(attempt):
                        raise TemporarilyUnavailable(
                            "a conflicting request is being written, retry shortly",
                            service="dynamodb",
                        ) from e

    def query_page(
        self,
        index: str,
        partition: str,
        low: str | None,
        high: str | None,
        limit: int,
        cursor: Mapping[str, Any] | None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One Query on `index` for sort keys in [low, high): up to `limit` items and a cursor.

        Asks for one item more than `limit` to know, without a second call, whether a next
        page exists; the cursor is then the key of the last item returned.
        """
        pk_name, sk_name = f"{index}pk", f"{index}sk"
        start_key = _check_cursor(cursor, pk_name, sk_name, partition, low, high)
        names = {"#pk": pk_name}
        values: dict[str, Any] = {":pk": partition}
        if low is not None or high is not None:
            names["#sk"] = sk_name
        condition = "#pk = :pk"
        # `high` is a bare instant, which sorts before every `<instant>#<id>` of that instant,
        # so an inclusive BETWEEN upper bound still excludes starts equal to `high`.
        if low is not None and high is not None:
            condition += " AND #sk BETWEEN :low AND :high"
            values.update({":low": low, ":high": high})
        elif low is not None:
            condition += " AND #sk >= :low"
            values[":low"] = low
        elif high is not None:
            condition += " AND #sk < :high"
            values[":high"] = high
        kwargs: QueryInputTypeDef = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _attribute_values(values),
            "Limit": limit + 1,
            "ScanIndexForward": True,
        }
        if start_key is not None:
            kwargs["ExclusiveStartKey"] = start_key
        with translate_errors("dynamodb"):
            found = self.client().query(**kwargs)
        items = [_from_attribute_values(item) for item in found.get("Items", [])]
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            return items, {k: last[k] for k in ("pk", "sk", pk_name, sk_name)}
        last_key = found.get("LastEvaluatedKey")
        if last_key and items:
            # The 1 MB page cap stopped the query early: more may follow.
            return items, {
                k: str(_plain(_deserializer.deserialize(v))) for k, v in last_key.items()
            }
        return items, None


def _check_cursor(
    cursor: Mapping[str, Any] | None,
    pk_name: str,
    sk_name: str,
    partition: str,
    low: str | None,
    high: str | None,
) -> dict[str, UniversalAttributeValueTypeDef] | None:
    """The ExclusiveStartKey of a cursor this query made, or InvalidCursor."""
    if cursor is None:
        return None
    if not isinstance(cursor, Mapping) or set(cursor) != {"pk", "sk", pk_name, sk_name}:
        raise InvalidCursor("unexpected cursor shape")
    if not all(isinstance(v, str) for v in cursor.values()):
        raise InvalidCursor("cursor values must be strings")
    pk, sk, order = cursor["pk"], cursor["sk"], cursor[sk_name]
    if cursor[pk_name] != partition:
        raise InvalidCursor("the cursor belongs to another list")
    if not pk.startswith("APPT#") or sk != APPOINTMENT_SK:
        raise InvalidCursor("the cursor does not name an appointment")
    if not order.endswith("#" + pk.removeprefix("APPT#")):
        raise InvalidCursor("the cursor's position does not match its appointment")
    if (low is not None and order < low) or (high is not None and order >= high):
        raise InvalidCursor("the cursor lies outside the requested range")
    return {k: {"S": v} for k, v in cursor.items()}


# --- repositories --------------------------------------------------------------------------


class DynamoDBAppointmentRepository:
    """Appointments, their cell locks, idempotency keys and outbox events in one table."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | LazyClient[DynamoDBClient] | None = None,
    ) -> None:
        self._table = _Table(table_name, client)

    @property
    def table_name(self) -> str:
        """The DynamoDB table this repository uses."""
        return self._table.table_name

    def add(self, appointment: Appointment, idempotency: IdempotencyRecord | None) -> None:
        """Store a new appointment with its cells, key and events in one transaction."""
        me = appointment.appointment_id
        tx = _Transaction(self._table.table_name)
        if idempotency is not None:
            # First: if a twin with this key booked the same time, its key must be what we
            # report, not the cells it holds.
            tx.put(
                idempotency_to_item(idempotency, appointment.created_at),
                "idempotency",
                "attribute_not_exists(pk)",
            )
        tx.put(appointment_to_item(appointment), "appointment", "attribute_not_exists(pk)")
        for pk, (kind, cell) in sorted(_cells(appointment).items()):
            tx.put(_cell_item(pk, cell, me), kind, "attribute_not_exists(pk)")
        for event in appointment.events:
            tx.put(event_to_item(event), "event")
        try:
            self._table.transact(tx)
        except _Cancelled as cancelled:
            precedence = ("idempotency", "doctor", "patient")
            if not self._heal(tx, cancelled, precedence, me):
                self._refuse_add(tx, cancelled, idempotency)
            try:
                self._table.transact(tx)
            except _Cancelled as again:
                self._refuse_add(tx, again, idempotency)

    @staticmethod
    def _refuse_add(
        tx: _Transaction, cancelled: _Cancelled, idempotency: IdempotencyRecord | None
    ) -> NoReturn:
        failed = tx.first(cancelled, "idempotency", "doctor", "patient")
        if failed == "idempotency" and idempotency is not None:
            raise IdempotencyKeyTaken(idempotency.key) from None
        if failed == "doctor":
            raise SlotUnavailable("the doctor already has an appointment at that time") from None
        if failed == "patient":
            raise PatientDoubleBooked(
                "the patient already has an appointment at that time"
            ) from None
        raise cancelled.error from None  # the appointment id itself exists: a bug

    def update(self, previous: Appointment, current: Appointment) -> None:
        """Replace `previous` by `current` on an unchanged version, moving cells atomically."""
        me = current.appointment_id
        old, new = _cells(previous), _cells(current)
        tx = _Transaction(self._table.table_name)
        self._versioned_update(tx, previous, current)
        # Own cells are accepted too: a leftover of this appointment is still its own.
        for pk in sorted(new.keys() - old.keys()):
            kind, cell = new[pk]
            tx.put(
                _cell_item(pk, cell, me),
                kind,
                "attribute_not_exists(pk) OR appointment_id = :me",
                {":me": me},
            )
        for event in current.events:
            tx.put(event_to_item(event), "event")
        if len(tx) > TRANSACTION_LIMIT:  # pragma: no cover - 1 + 96 + a few events
            raise ValueError("too many new cells and events for one transaction")
        freed = sorted(old.keys() - new.keys())
        now, later = freed[: TRANSACTION_LIMIT - len(tx)], freed[TRANSACTION_LIMIT - len(tx) :]
        for pk in now:
            self._free(tx, pk, old[pk][0] + "_freed", me)
        try:
            self._table.transact(tx)
        except _Cancelled as cancelled:
            if not self._heal(tx, cancelled, ("appointment", "doctor", "patient"), me):
                self._refuse_update(tx, cancelled, previous)
            try:
                self._table.transact(tx)
            except _Cancelled as again:
                self._refuse_update(tx, again, previous)
        if later:
            self._free_leftovers(me, later, old)

    @staticmethod
    def _refuse_update(tx: _Transaction, cancelled: _Cancelled, previous: Appointment) -> NoReturn:
        failed = tx.first(cancelled, "appointment", "doctor", "patient")
        if failed == "doctor":
            raise SlotUnavailable("the doctor already has an appointment at that time") from None
        if failed == "patient":
            raise PatientDoubleBooked(
                "the patient already has an appointment at that time"
            ) from None
        stored = _cancelled_item(cancelled.error, 0)
        # Also a freed cell held by someone else: the stored state is not `previous`.
        raise VersionConflict(
            "the appointment changed meanwhile",
            expected=previous.version,
            actual=stored.get("version") if stored is not None else None,
        ) from None

    # Self-healing of stale cells. A crash or a failure between the two transactions of a long
    # move (or any other orphan lock) leaves cells held by an appointment that no longer
    # claims them; instead of refusing that time until the cells' TTL, the lock is repaired
    # the first time someone needs that time. Only the refused path pays for it.
    def _heal(
        self, tx: _Transaction, cancelled: _Cancelled, precedence: Sequence[str], me: str
    ) -> bool:
        """Free the stale cells that refused `tx`; True if `tx` is worth sending once more."""
        if tx.first(cancelled, *precedence) not in _CELL_ROLES:
            return False
        owners: dict[str, dict[str, Any] | None] = {}
        stale: dict[str, list[str]] = {}
        for cell in self._table.batch_get(tx.cell_puts(), LOCK_SK):
            owner = cell.get("appointment_id")
            if owner == me:
                continue  # our own cell (a leftover of this appointment) is accepted
            if not isinstance(owner, str):
                return False  # not a cell citas wrote: leave it alone
            if owner not in owners:
                owners[owner] = self._table.get(appointment_pk(owner), APPOINTMENT_SK)
            stored = owners[owner]
            if stored is not None and cell["pk"] in _cells(appointment_from_item(stored)):
                return False  # held by an active appointment that covers it: really taken
            stale.setdefault(owner, []).append(cell["pk"])
        for owner, pks in stale.items():
            self._release(owner, owners[owner], pks)
        return True

    def _release(self, owner: str, stored: dict[str, Any] | None, pks: Sequence[str]) -> None:
        """Delete `owner`'s stale cells, provided the owner did not change since it was read."""
        chunk = TRANSACTION_LIMIT - 1
        for start in range(0, len(pks), chunk):
            tx = _Transaction(self._table.table_name)
            # A move of the owner meanwhile could have taken these cells again: only the state
            # just read proves them stale.
            if stored is None:
                tx.check(appointment_pk(owner), APPOINTMENT_SK, "owner", "attribute_not_exists(pk)")
            else:
                tx.check(
                    appointment_pk(owner),
                    APPOINTMENT_SK,
                    "owner",
                    "#version = :version",
                    {"#version": "version"},
                    {":version": stored.get("version")},
                )
            for pk in pks[start : start + chunk]:
                tx.delete(pk, LOCK_SK, "stale", "appointment_id = :owner", {":owner": owner})
            try:
                self._table.transact(tx)
            except _Cancelled:
                # Someone freed or took a cell again, or the owner changed: the retry decides.
                continue
            log.warning(
                "freed stale cells",
                extra={"fields": {"appointment_id": owner, "cells": len(tx) - 1}},
            )

    def _versioned_update(
        self, tx: _Transaction, previous: Appointment, current: Appointment
    ) -> None:
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
            "appointment",
            expression,
            "#version = :expected",
            names,
            values,
        )

    @staticmethod
    def _free(tx: _Transaction, pk: str, role: str, me: str) -> None:
        # A cell past its TTL may already be gone: freeing it is then a no-op, not a failure.
        tx.delete(
            pk, LOCK_SK, role, "attribute_not_exists(pk) OR appointment_id = :me", {":me": me}
        )

    def _free_leftovers(
        self, me: str, leftovers: Sequence[str], old: Mapping[str, tuple[str, datetime]]
    ) -> None:
        # The change is committed: failing now would report "nothing written" falsely, so a
        # cell that cannot be freed is logged and left to its TTL.
        for start in range(0, len(leftovers), TRANSACTION_LIMIT):
            tx = _Transaction(self._table.table_name)
            for pk in leftovers[start : start + TRANSACTION_LIMIT]:
                self._free(tx, pk, old[pk][0] + "_freed", me)
            try:
                self._table.transact(tx)
            except (_Cancelled, TemporarilyUnavailable, ClientError):
                log.warning(
                    "could not free the old cells of a rescheduled appointment",
                    extra={"fields": {"appointment_id": me, "cells": len(tx)}},
                )

    def get(self, appointment_id: str) -> Appointment | None:
        """The appointment (strongly consistent read), or None."""
        item = self._table.get(appointment_pk(appointment_id), APPOINTMENT_SK)
        return appointment_from_item(item) if item is not None else None

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        """The record stored under `key` (strongly consistent read), or None."""
        item = self._table.get(idempotency_pk(key), IDEMPOTENCY_SK)
        return idempotency_from_item(item) if item is not None else None

    def list_by_doctor(
        self,
        doctor_id: str,
        start_from: datetime,
        start_to: datetime,
        limit: int,
        cursor: Mapping[str, Any] | None,
    ) -> Page:
        """A doctor's appointments with start in [start_from, start_to): one Query on gsi1."""
        return self._list("gsi1", doctor_partition(doctor_id), start_from, start_to, limit, cursor)

    def list_by_country_status(
        self,
        country: str,
        status: Status,
        start_from: datetime | None,
        start_to: datetime | None,
        limit: int,
        cursor: Mapping[str, Any] | None,
    ) -> Page:
        """Appointments of a country in a status, start in [from, to): one Query on gsi2."""
        partition = country_status_partition(country, status)
        return self._list("gsi2", partition, start_from, start_to, limit, cursor)

    def _list(
        self,
        index: str,
        partition: str,
        start_from: datetime | None,
        start_to: datetime | None,
        limit: int,
        cursor: Mapping[str, Any] | None,
    ) -> Page:
        low = _instant(start_from) if start_from is not None else None
        high = _instant(start_to) if start_to is not None else None
        if low is not None and high is not None and high <= low:
            if cursor is not None:
                _check_cursor(cursor, f"{index}pk", f"{index}sk", partition, None, None)
            return Page([], None)  # an empty range; BETWEEN would reject low > high
        items, next_cursor = self._table.query_page(index, partition, low, high, limit, cursor)
        return Page([appointment_from_item(item) for item in items], next_cursor)

    def record_reminder(self, previous: Appointment, current: Appointment) -> bool:
        """Store `reminded_start` and the ReminderDue event once per start, in one transaction."""
        start = current.snapshot().get("reminded_start")
        if start is None:
            return False  # nothing to record
        tx = _Transaction(self._table.table_name)
        tx.update(
            appointment_pk(current.appointment_id),
            APPOINTMENT_SK,
            "appointment",
            "SET #reminded = :start",
            "#version = :version AND (attribute_not_exists(#reminded) OR #reminded <> :start)",
            {"#reminded": "reminded_start", "#version": "version"},
            {":start": start, ":version": previous.version},
        )
        for event in current.events:
            tx.put(event_to_item(event), "event")
        try:
            self._table.transact(tx)
        except _Cancelled:
            return False
        return True


class DynamoDBDoctorRepository:
    """Doctors' profiles, one item each."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | LazyClient[DynamoDBClient] | None = None,
    ) -> None:
        self._table = _Table(table_name, client)

    def put(self, doctor: Doctor, *, keep_zone: bool = False) -> bool:
        """Create or replace in one PutItem; True if there was no profile before.

        `keep_zone`: the put is conditioned on a new doctor or the same time zone, else
        ZoneChanged (nothing written).
        """
        condition: dict[str, Any] = {}
        if keep_zone:
            condition = {
                "ConditionExpression": "attribute_not_exists(pk) OR time_zone = :zone",
                "ExpressionAttributeValues": {":zone": {"S": doctor.time_zone}},
            }
        try:
            with translate_errors("dynamodb"):
                answer = self._table.client().put_item(
                    TableName=self._table.table_name,
                    Item=_attribute_values(doctor_to_item(doctor)),
                    ReturnValues="ALL_OLD",
                    **condition,
                )
        except ClientError as e:
            if is_condition_failure(e):
                raise ZoneChanged(doctor.doctor_id) from e
            raise
        return not answer.get("Attributes")

    def get(self, doctor_id: str) -> Doctor | None:
        """The doctor (strongly consistent read), or None."""
        item = self._table.get(f"DOCTOR#{doctor_id}", DOCTOR_SK)
        return doctor_from_item(item) if item is not None else None


class DynamoDBBookingRequestRepository:
    """Asynchronous booking requests; an outcome is stored only over a pending request."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | LazyClient[DynamoDBClient] | None = None,
    ) -> None:
        self._table = _Table(table_name, client)

    def add(self, request: BookingRequest) -> None:
        """Store a new request; an id already taken by another request is an error."""
        item = request_to_item(request)
        try:
            with translate_errors("dynamodb"):
                self._table.client().put_item(
                    TableName=self._table.table_name,
                    Item=_attribute_values(item),
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as e:
            if not is_condition_failure(e):
                raise
            # botocore retried a write whose first answer was lost: it is ours, all is well.
            existing: Any = e.response.get("Item")
            stored = _from_attribute_values(existing) if isinstance(existing, dict) else None
            if stored != {k: _plain(v) for k, v in item.items() if v is not None}:
                raise ValueError(f"booking request {request.request_id} already exists") from e

    def get(self, request_id: str) -> BookingRequest | None:
        """The request (strongly consistent read), or None."""
        item = self._table.get(request_pk(request_id), REQUEST_SK)
        return request_from_item(item) if item is not None else None

    def save(self, request: BookingRequest) -> None:
        """Store the outcome (with its events, in one transaction) while still pending."""
        condition = "#status = :pending"
        names = {"#status": "status"}
        values = {":pending": str(RequestStatus.PENDING)}
        if not request.events:
            # Nothing to commit alongside: a conditional put costs half a transaction.
            try:
                with translate_errors("dynamodb"):
                    self._table.client().put_item(
                        TableName=self._table.table_name,
                        Item=_attribute_values(request_to_item(request)),
                        ConditionExpression=condition,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=_attribute_values(values),
                    )
            except ClientError as e:
                if not is_condition_failure(e):
                    raise
            return
        tx = _Transaction(self._table.table_name)
        tx.put(request_to_item(request), "request", condition, values, names)
        for event in request.events:
            tx.put(event_to_item(event), "event")
        try:
            self._table.transact(tx)
        except _Cancelled:
            return  # another worker stored an outcome first; the first one stands


class DynamoDBEventOutbox:
    """The outbox items of the table, listed through their gsi1 partition, oldest first."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | LazyClient[DynamoDBClient] | None = None,
        *,
        retry_delay: float = 0.05,
    ) -> None:
        self._table = _Table(table_name, client)
        # Deletes left unprocessed are DynamoDB shedding load: the batch policy, paced slower.
        self._retry = dataclasses.replace(BATCH_RETRY, base_delay=retry_delay)

    def pending(self, limit: int) -> Sequence[Event]:
        """Up to `limit` unpublished events, oldest first: one Query, no Scan."""
        if limit < 1:
            return []  # DynamoDB refuses Limit=0
        with translate_errors("dynamodb"):
            found = self._table.client().query(
                TableName=self._table.table_name,
                IndexName="gsi1",
                KeyConditionExpression="gsi1pk = :outbox",
                ExpressionAttributeValues={":outbox": {"S": OUTBOX_PARTITION}},
                Limit=limit,
                ScanIndexForward=True,
            )
        return [event_from_item(_from_attribute_values(i)) for i in found.get("Items", [])]

    def remove(self, event_ids: Sequence[str]) -> None:
        """Delete published events with BatchWriteItem, 25 at a time (deletes are idempotent)."""
        unique = list(dict.fromkeys(event_ids))
        for start in range(0, len(unique), BATCH_WRITE_LIMIT):
            requests: list[WriteRequestTypeDef] = [
                {"DeleteRequest": {"Key": _key(outbox_pk(event_id), EVENT_SK)}}
                for event_id in unique[start : start + BATCH_WRITE_LIMIT]
            ]
            self._batch_delete(requests)

    def _batch_delete(self, requests: list[WriteRequestTypeDef]) -> None:
        for _attempt in self._retry:
            with translate_errors("dynamodb"):
                answer = self._table.client().batch_write_item(
                    RequestItems={self._table.table_name: requests}
                )
            unprocessed = answer.get("UnprocessedItems", {}).get(self._table.table_name, [])
            requests = [
                {"DeleteRequest": r["DeleteRequest"]} for r in unprocessed if "DeleteRequest" in r
            ]
            if not requests:
                return
        raise TemporarilyUnavailable(
            "dynamodb left outbox deletes unprocessed, retry shortly", service="dynamodb"
        )


PROCESSED_SK: Final = "DONE"
# Longer than any redelivery: SQS keeps a message 14 days at most, but a consumer sees a
# duplicate within minutes (visibility timeouts, relay retries), never a week later.
PROCESSED_TTL: Final = timedelta(days=7)


def processed_pk(key: str) -> str:
    """The partition key of a handled-event marker."""
    return f"DONE#{key}"


class DynamoDBProcessedEvents:
    """Handled-event markers `DONE#<key>` / `DONE`, expiring a week after they are written."""

    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | LazyClient[DynamoDBClient] | None = None,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._table = _Table(table_name, client)
        # Only the expiry stamp reads the time; the domain's Clock is not needed for that.
        self._now = now or (lambda: datetime.now(UTC))

    def seen(self, key: str) -> bool:
        """Whether `key` was handled (strongly consistent read)."""
        return self._table.get(processed_pk(key), PROCESSED_SK) is not None

    def remember(self, key: str) -> None:
        """Record `key` as handled; writing it twice is harmless (PutItem replaces)."""
        item = {
            "pk": processed_pk(key),
            "sk": PROCESSED_SK,
            "expires_at": _epoch(self._now() + PROCESSED_TTL),
        }
        with translate_errors("dynamodb"):
            self._table.client().put_item(
                TableName=self._table.table_name, Item=_attribute_values(item)
            )


__all__ = [
    "CLIENT_CONFIG",
    "RETRYABLE_CODES",
    "DynamoDBAppointmentRepository",
    "DynamoDBBookingRequestRepository",
    "DynamoDBDoctorRepository",
    "DynamoDBEventOutbox",
    "DynamoDBProcessedEvents",
    "LazyClient",
    "default_client",
    "error_code",
    "is_retryable",
    "translate_errors",
]
