"""Patient contacts, sent messages and messages held back by quiet hours, in the one table.

Items (key functions in `keys`):

- contact `<clinic>#PATIENT#<patient key>` / `CONTACT`: `patient_key` (a hash of the phone,
  never the phone), `opted_out` (BOOL; absent: never opted out) and one top-level attribute
  `AW#<appointment id>` per awaited answer, valued with its ISO UTC start. A few awaited
  answers at most (past ones are pruned on every write): well under 1 KB, 1 WRU a write.
- sent message `SENT#<provider message id>` / `SENT`: `clinic_id`, `appointment_id`,
  `channel`, `text`, `link`, `expires_at` (TTL, a week). The deployment's own ledger, like
  the handled-event markers: provider ids are unique across clinics, the item names its own.
- held message `<clinic>#LATER#<event id>` / `LATER`: `envelope` (the event's JSON envelope),
  `due_at`, `gsi1pk=<clinic>#LATER`, `gsi1sk=<due instant>#<event id>` (due ones oldest first,
  no Scan), `expires_at` (TTL, due + a week: by then the message is stale).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from adapters.aws.client import TRANSACTION_RETRY, is_condition_failure
from adapters.aws.dynamodb.items import attribute_values
from adapters.aws.dynamodb.keys import (
    AWAITING_PREFIX,
    CONTACT_SK,
    DEFERRED_SK,
    DEFERRED_TTL,
    SENT_SK,
    SENT_TTL,
    contact_pk,
    deferred_partition,
    deferred_pk,
    epoch,
    instant,
    iso,
    sent_pk,
)
from adapters.aws.dynamodb.table import Table
from adapters.aws.dynamodb.transaction import Cancelled, Role, Transaction
from domain.clinics import require_clinic
from domain.errors import TemporarilyUnavailable
from domain.events import Event, event_from_envelope
from ports.patients import Contact, DeferredMessage, SentMessage

if TYPE_CHECKING:
    from adapters.aws.dynamodb.table import TableClient

# Past answers one write prunes at most, so its expressions stay far below DynamoDB's 4 KB;
# any left over go with the next write.
_MAX_PRUNED: Final = 40
# Sorts after `#`, hence after every `<instant>#<event id>` of the same instant: `< :upto`
# takes the messages due exactly at `now` too.
_AFTER_IDS: Final = "$"


def _awaited(item: Mapping[str, Any]) -> dict[str, str]:
    """The contact's awaited answers as stored: attribute name -> ISO start."""
    return {k: str(v) for k, v in item.items() if k.startswith(AWAITING_PREFIX)}


def contact_from_item(patient_key: str, item: Mapping[str, Any]) -> Contact:
    """The contact of a stored item."""
    awaiting = {
        name.removeprefix(AWAITING_PREFIX): datetime.fromisoformat(start)
        for name, start in _awaited(item).items()
    }
    return Contact(patient_key, opted_out=bool(item.get("opted_out", False)), awaiting=awaiting)


class DynamoDBPatientContacts:
    """One clinic's contacts: one item per phone, every change one conditioned write."""

    def __init__(self, table_name: str, client: TableClient = None, *, clinic_id: str) -> None:
        self._table = Table(table_name, client)
        self._clinic = clinic_id

    def get(self, patient_key: str) -> Contact | None:
        """The contact (strongly consistent read), or None."""
        item = self._table.get(contact_pk(self._clinic, patient_key), CONTACT_SK)
        return contact_from_item(patient_key, item) if item is not None else None

    def await_answer(
        self, patient_key: str, appointment_id: str, start: datetime, *, now: datetime
    ) -> None:
        """Add the awaited answer and REMOVE past ones in one UpdateItem, after a read.

        Each removal is conditioned on the value read, so an entry rewritten meanwhile (the
        appointment moved to a later start) is never dropped: the step reads and tries again.
        """
        pk = contact_pk(self._clinic, patient_key)
        new = AWAITING_PREFIX + appointment_id
        for attempt in TRANSACTION_RETRY:
            stored = _awaited(self._table.get(pk, CONTACT_SK) or {})
            past = [
                (name, value)
                for name, value in stored.items()
                if name != new and datetime.fromisoformat(value) < now
            ][:_MAX_PRUNED]
            names = {"#key": "patient_key", "#new": new}
            values: dict[str, Any] = {":key": patient_key}
            # The patient key is always SET, so the step writes the item even when it only
            # removes (a start already past is dropped like the other past ones).
            sets, removes, checks = ["#key = :key"], [], []
            if start >= now:
                sets.append("#new = :start")
                values[":start"] = iso(start)
            else:
                removes.append("#new")
            for i, (name, value) in enumerate(past):
                names[f"#p{i}"], values[f":p{i}"] = name, value
                removes.append(f"#p{i}")
                checks.append(f"(attribute_not_exists(#p{i}) OR #p{i} = :p{i})")
            expression = "SET " + ", ".join(sets)
            if removes:
                expression += " REMOVE " + ", ".join(removes)
            options: dict[str, Any] = (
                {"ConditionExpression": " AND ".join(checks)} if checks else {}
            )
            try:
                self._table.update(
                    pk,
                    CONTACT_SK,
                    UpdateExpression=expression,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attribute_values(values),
                    **options,
                )
                return
            except ClientError as e:
                if not is_condition_failure(e):
                    raise
                if TRANSACTION_RETRY.is_last(attempt):
                    raise TemporarilyUnavailable(
                        "the contact keeps changing, retry shortly", service="dynamodb"
                    ) from e

    def answered(self, patient_key: str, appointment_id: str) -> None:
        """REMOVE the awaited answer in one UpdateItem; an unknown contact is not created."""
        try:
            self._table.update(
                contact_pk(self._clinic, patient_key),
                CONTACT_SK,
                UpdateExpression="REMOVE #answered",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#answered": AWAITING_PREFIX + appointment_id},
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise

    def set_opted_out(self, patient_key: str, opted_out: bool, event: Event | None) -> bool:
        """Set the flag only if it changes, with `event` in the same transaction; whether it did.

        A phone never heard of counts as opted in: opting it in writes nothing.
        """
        if event is not None:
            require_clinic(self._clinic, event.clinic_id, "an event")
        pk = contact_pk(self._clinic, patient_key)
        expression = "SET #out = :flag, #key = :key"
        names = {"#out": "opted_out", "#key": "patient_key"}
        values = {":flag": opted_out, ":key": patient_key, ":other": not opted_out}
        condition = "attribute_not_exists(#out) OR #out = :other" if opted_out else "#out = :other"
        if event is None:
            try:
                self._table.update(
                    pk,
                    CONTACT_SK,
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=attribute_values(values),
                )
            except ClientError as e:
                if not is_condition_failure(e):
                    raise
                return False
            return True
        tx = Transaction(self._table.table_name)
        tx.update(pk, CONTACT_SK, Role.CONTACT, expression, condition, names, values)
        tx.put_events([event])
        try:
            self._table.transact(tx)
        except Cancelled:
            return False  # already so: no write, no event
        return True


class DynamoDBSentMessages:
    """The ledger of sent messages `SENT#<message id>` / `SENT`, expiring a week after."""

    def __init__(
        self,
        table_name: str,
        client: TableClient = None,
        *,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._table = Table(table_name, client)
        # Only the expiry stamp reads the time, as for the handled-event markers.
        self._now = now or (lambda: datetime.now(UTC))

    def remember(self, message_id: str, message: SentMessage) -> None:
        """Keep `message` with one PutItem; the same id again replaces it (a retried send)."""
        self._table.put(
            {
                "pk": sent_pk(message_id),
                "sk": SENT_SK,
                "clinic_id": message.clinic_id,
                "appointment_id": message.appointment_id,
                "channel": message.channel,
                "text": message.text,
                "link": message.link,
                "kind": message.kind,
                "expires_at": epoch(self._now() + SENT_TTL),
            }
        )

    def find(self, message_id: str) -> SentMessage | None:
        """The message sent under `message_id` (strongly consistent read), or None."""
        item = self._table.get(sent_pk(message_id), SENT_SK)
        if item is None:
            return None
        return SentMessage(
            clinic_id=item["clinic_id"],
            appointment_id=item.get("appointment_id"),
            channel=item["channel"],
            text=item["text"],
            link=item.get("link"),
            kind=item.get("kind"),
        )


class DynamoDBDeferredMessages:
    """One clinic's held messages, listed by due instant in their gsi1 partition."""

    def __init__(self, table_name: str, client: TableClient = None, *, clinic_id: str) -> None:
        self._table = Table(table_name, client)
        self._clinic = clinic_id

    def defer(self, event: Event, due_at: datetime) -> None:
        """Hold the message with one PutItem, only if the event is not held already."""
        require_clinic(self._clinic, event.clinic_id, "an event")
        item = {
            "pk": deferred_pk(self._clinic, event.event_id),
            "sk": DEFERRED_SK,
            "envelope": json.dumps(event.to_envelope(), separators=(",", ":"), sort_keys=True),
            "due_at": iso(due_at),
            "gsi1pk": deferred_partition(self._clinic),
            "gsi1sk": f"{instant(due_at)}#{event.event_id}",
            "expires_at": epoch(due_at + DEFERRED_TTL),
        }
        try:
            self._table.put(item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as e:
            if not is_condition_failure(e):
                raise  # else held already: the first due time stands

    def due(self, now: datetime, limit: int) -> Sequence[DeferredMessage]:
        """Up to `limit` messages due at or before `now`, oldest first: a Query of gsi1.

        The index is eventually consistent: a message held a moment ago may wait a tick, and
        one `done` a moment ago may show once more, so sending it must be idempotent.
        """
        if limit < 1:
            return []  # DynamoDB refuses Limit=0
        items = self._table.query_up_to(
            limit,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :partition AND gsi1sk < :upto",
            ExpressionAttributeValues=attribute_values(
                {":partition": deferred_partition(self._clinic), ":upto": instant(now) + _AFTER_IDS}
            ),
            ScanIndexForward=True,
        )
        return [
            DeferredMessage(
                event_from_envelope(json.loads(item["envelope"])),
                datetime.fromisoformat(item["due_at"]),
            )
            for item in items
        ]

    def done(self, event_id: str) -> None:
        """Forget the held message with one DeleteItem (absent is fine)."""
        self._table.delete(deferred_pk(self._clinic, event_id), DEFERRED_SK)
