"""The other repositories of the table: doctors, booking requests, the outbox, handled events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
from botocore.exceptions import ClientError

from adapters.aws.client import BATCH_RETRY, is_condition_failure
from adapters.aws.dynamodb.appointments import DynamoDBAppointmentRepository
from adapters.aws.dynamodb.doctors import DynamoDBDoctorRepository
from adapters.aws.dynamodb.items import (
    attribute_values,
    event_from_item,
    from_attribute_values,
    plain,
    processed_to_item,
    request_from_item,
    request_to_item,
)
from adapters.aws.dynamodb.keys import (
    BATCH_WRITE_LIMIT,
    EVENT_SK,
    OUTBOX_PARTITION,
    PROCESSED_SK,
    REQUEST_SK,
    outbox_pk,
    processed_pk,
    request_pk,
)
from adapters.aws.dynamodb.patients import DynamoDBDeferredMessages, DynamoDBPatientContacts
from adapters.aws.dynamodb.table import Table
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction
from adapters.aws.dynamodb.waitlist import DynamoDBWaitlistRepository
from domain.booking_request import BookingRequest, RequestStatus
from domain.clinics import require_clinic
from domain.events import Event

if TYPE_CHECKING:
    from adapters.aws.dynamodb.table import TableClient


class DynamoDBBookingRequestRepository:
    """One clinic's booking requests; an outcome is stored only over a pending request."""

    def __init__(self, table_name: str, client: TableClient = None, *, clinic_id: str) -> None:
        self._table = Table(table_name, client)
        self._clinic = clinic_id

    def add(self, request: BookingRequest) -> None:
        """Store a new request; an id already taken by another request is an error."""
        require_clinic(self._clinic, request.clinic_id, "a booking request")
        item = request_to_item(request)
        try:
            self._table.put(
                item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise
            # botocore retried a write whose first answer was lost: it is ours, all is well.
            existing: Any = e.response.get("Item")
            stored = from_attribute_values(existing) if isinstance(existing, dict) else None
            if stored != {k: plain(v) for k, v in item.items() if v is not None}:
                raise ValueError(f"booking request {request.request_id} already exists") from e

    def get(self, request_id: str) -> BookingRequest | None:
        """The request (strongly consistent read), or None."""
        item = self._table.get(request_pk(self._clinic, request_id), REQUEST_SK)
        return request_from_item(item) if item is not None else None

    def save(self, request: BookingRequest) -> None:
        """Store the outcome (with its events, in one transaction) while still pending."""
        require_clinic(self._clinic, request.clinic_id, "a booking request")
        condition = "#status = :pending"
        names = {"#status": "status"}
        values = {":pending": str(RequestStatus.PENDING)}
        if not request.events:
            # Nothing to commit alongside: a conditional put costs half a transaction.
            try:
                self._table.put(
                    request_to_item(request),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attribute_values(values),
                )
            except ClientError as e:
                if not is_condition_failure(e):
                    raise
            return
        tx = Transaction(self._table.table_name)
        tx.put(request_to_item(request), Role.REQUEST, condition, values, names)
        tx.put_events(request.events)
        try:
            self._table.transact(tx)
        except Cancelled:
            return  # another worker stored an outcome first; the first one stands
        request.collect_new_events()


class DynamoDBEventOutbox:
    """The outbox items of the table, listed through their gsi1 partition, oldest first."""

    def __init__(
        self,
        table_name: str,
        client: TableClient = None,
        *,
        retry_delay: float = 0.05,
    ) -> None:
        self._table = Table(table_name, client)
        # Deletes left unprocessed are DynamoDB shedding load: the batch policy, paced slower.
        self._retry = attrs.evolve(BATCH_RETRY, base_delay=retry_delay)

    def pending(self, limit: int) -> Sequence[Event]:
        """Up to `limit` unpublished events, oldest first: one Query, no Scan."""
        if limit < 1:
            return []  # DynamoDB refuses Limit=0
        items = self._table.query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :outbox",
            ExpressionAttributeValues={":outbox": {"S": OUTBOX_PARTITION}},
            Limit=limit,
            ScanIndexForward=True,
        )
        return [event_from_item(item) for item in items]

    def remove(self, event_ids: Sequence[str]) -> None:
        """Delete published events with BatchWriteItem, 25 at a time (deletes are idempotent)."""
        unique = list(dict.fromkeys(event_ids))
        for start in range(0, len(unique), BATCH_WRITE_LIMIT):
            keys = [(outbox_pk(e), EVENT_SK) for e in unique[start : start + BATCH_WRITE_LIMIT]]
            self._table.batch_delete(keys, self._retry)


class DynamoDBProcessedEvents:
    """Handled-event markers `DONE#<key>` / `DONE`, expiring a week after they are written."""

    def __init__(
        self,
        table_name: str,
        client: TableClient = None,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._table = Table(table_name, client)
        # Only the expiry stamp reads the time; the domain's Clock is not needed for that.
        self._now = now or (lambda: datetime.now(UTC))

    def seen(self, key: str) -> bool:
        """Whether `key` was handled (strongly consistent read)."""
        return self._table.get(processed_pk(key), PROCESSED_SK) is not None

    def remember(self, key: str) -> None:
        """Record `key` as handled; writing it twice is harmless (PutItem replaces)."""
        self._table.put(processed_to_item(key, self._now()))


class DynamoDBRepositories:
    """The repositories of each clinic, over one table and one client."""

    def __init__(self, table_name: str, client: TableClient = None) -> None:
        self.table_name = table_name
        self._client = client

    def appointments(self, clinic_id: str) -> DynamoDBAppointmentRepository:
        """The clinic's appointments."""
        return DynamoDBAppointmentRepository(self.table_name, self._client, clinic_id=clinic_id)

    def doctors(self, clinic_id: str) -> DynamoDBDoctorRepository:
        """The clinic's doctors."""
        return DynamoDBDoctorRepository(self.table_name, self._client, clinic_id=clinic_id)

    def requests(self, clinic_id: str) -> DynamoDBBookingRequestRepository:
        """The clinic's booking requests."""
        return DynamoDBBookingRequestRepository(self.table_name, self._client, clinic_id=clinic_id)

    def contacts(self, clinic_id: str) -> DynamoDBPatientContacts:
        """The clinic's patient contacts: opt-outs and awaited answers."""
        return DynamoDBPatientContacts(self.table_name, self._client, clinic_id=clinic_id)

    def deferred(self, clinic_id: str) -> DynamoDBDeferredMessages:
        """The clinic's messages held back by quiet hours."""
        return DynamoDBDeferredMessages(self.table_name, self._client, clinic_id=clinic_id)

    def waitlist(self, clinic_id: str) -> DynamoDBWaitlistRepository:
        """The clinic's waitlist entries and their offers' holds."""
        return DynamoDBWaitlistRepository(self.table_name, self._client, clinic_id=clinic_id)
