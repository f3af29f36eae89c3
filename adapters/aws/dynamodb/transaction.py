"""The transaction builder: the items of one TransactWriteItems and the role each one plays.

A cancelled transaction answers with one reason per item, in item order; the role of the
item tells the repository what a failed condition means (a taken slot, a newer version, a
used idempotency key), so every item is added with its `Role`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError

from adapters.aws.dynamodb.items import attribute_values, event_to_item, from_attribute_values
from adapters.aws.dynamodb.keys import key
from domain.events import Event

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

# The reason code of an item whose own condition refused the transaction.
CONDITION_FAILED_REASON: Final = "ConditionalCheckFailed"
# Cancellation reasons of a transaction that say "contended or throttled", not "refused".
TRANSIENT_REASONS: Final = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
    }
)
_REASONS_IN_MESSAGE = re.compile(r"\[([A-Za-z, ]+)\]\s*$")


class Role(StrEnum):
    """What an item of a transaction stands for, hence what its failed condition means."""

    IDEMPOTENCY = "idempotency"
    APPOINTMENT = "appointment"
    REQUEST = "request"
    EVENT = "event"
    # A doctor's or a patient's day guard: its cells are taken or freed (`guards`).
    DOCTOR_GUARD = "doctor"
    PATIENT_GUARD = "patient"
    # The doctor's profile, checked (or bumped) at the schedule version a change read.
    SCHEDULE = "schedule"
    TIME_OFF = "time_off"
    # A phone's contact, whose opt-out flag must still be the other value.
    CONTACT = "contact"
    # A waitlist entry, changed only at the version it was read at.
    WAITLIST = "waitlist"


def cancellation_reasons(error: ClientError) -> list[str]:
    """The reason code of each item of a cancelled transaction, in item order."""
    reasons = error.response.get("CancellationReasons")
    if isinstance(reasons, list):
        return [str(reason.get("Code", "None")) for reason in reasons]
    # Older botocore releases only carry the reasons inside the message.
    match = _REASONS_IN_MESSAGE.search(str(error.response.get("Error", {}).get("Message", "")))
    return [part.strip() for part in match.group(1).split(",")] if match else []


def cancelled_item(error: ClientError, index: int) -> dict[str, Any] | None:
    """The stored item that refused item `index` (when it asked for ALL_OLD), or None."""
    reasons = error.response.get("CancellationReasons")
    if isinstance(reasons, list) and index < len(reasons) and "Item" in reasons[index]:
        return from_attribute_values(reasons[index]["Item"])
    return None


class Cancelled(Exception):
    """A transaction refused by a condition: the reason code of each item, in item order."""

    def __init__(self, reasons: Sequence[str], error: ClientError) -> None:
        super().__init__(reasons)
        self.reasons = list(reasons)
        self.error = error

    def failed(self, index: int) -> bool:
        """Whether item `index`'s own condition failed."""
        return index < len(self.reasons) and self.reasons[index] == CONDITION_FAILED_REASON


def _expression_parts(
    condition: str | None, names: Mapping[str, str] | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if condition is not None:
        parts["ConditionExpression"] = condition
    if names:
        parts["ExpressionAttributeNames"] = dict(names)
    if values:
        parts["ExpressionAttributeValues"] = attribute_values(values)
    return parts


class Transaction:
    """The items of one TransactWriteItems and, for each, what its failure means."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        self.items: list[TransactWriteItemTypeDef] = []
        self.roles: list[Role] = []

    def __len__(self) -> int:
        return len(self.items)

    def put(
        self,
        item: Mapping[str, Any],
        role: Role,
        condition: str | None = None,
        values: Mapping[str, Any] | None = None,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Add a Put of `item`, conditioned if `condition` is given."""
        put: dict[str, Any] = {"TableName": self.table_name, "Item": attribute_values(item)}
        put.update(_expression_parts(condition, names, values))
        self.items.append({"Put": put})  # type: ignore[typeddict-item]
        self.roles.append(role)

    def put_events(self, events: Iterable[Event]) -> None:
        """Add the outbox item of each event, unconditioned (event ids are unique)."""
        for event in events:
            self.put(event_to_item(event), Role.EVENT)

    def update(
        self,
        pk: str,
        sk: str,
        role: Role,
        expression: str,
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
    ) -> None:
        """Add a conditioned Update of `(pk, sk)`; a refusal returns the stored item."""
        self.items.append(
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": key(pk, sk),
                    "UpdateExpression": expression,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": dict(names),
                    "ExpressionAttributeValues": attribute_values(values),
                    # The stored item says why: which version won, which cell is taken.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
        )
        self.roles.append(role)

    def check(
        self,
        pk: str,
        sk: str,
        role: Role,
        condition: str,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        all_old: bool = False,
    ) -> None:
        """Add a ConditionCheck of `(pk, sk)`: the transaction commits only if it holds.

        `all_old`: a refusal returns the stored item (to tell which cell is taken).
        """
        check: dict[str, Any] = {"TableName": self.table_name, "Key": key(pk, sk)}
        check.update(_expression_parts(condition, names, values))
        if all_old:
            check["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self.items.append({"ConditionCheck": check})  # type: ignore[typeddict-item]
        self.roles.append(role)

    def delete(self, pk: str, sk: str, role: Role, condition: str) -> None:
        """Add a conditioned Delete of `(pk, sk)`."""
        delete = {
            "TableName": self.table_name,
            "Key": key(pk, sk),
            "ConditionExpression": condition,
        }
        self.items.append({"Delete": delete})  # type: ignore[typeddict-item]
        self.roles.append(role)

    def first(self, cancelled: Cancelled, *roles: Role) -> Role | None:
        """The first of `roles` (in that precedence) whose condition failed."""
        for role in roles:
            if any(cancelled.failed(i) for i, r in enumerate(self.roles) if r == role):
                return role
        return None
