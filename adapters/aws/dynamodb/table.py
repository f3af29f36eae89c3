"""The table: every DynamoDB call the repositories make, with errors translated at this edge.

Repositories build items and read answers; this module owns the client, the request shapes,
the retries of deferred work (`TRANSACTION_RETRY`, `BATCH_RETRY`) and the cursor of a page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import boto3
from botocore.exceptions import ClientError

from adapters.aws.client import (
    BATCH_RETRY,
    CLIENT_CONFIG,
    TRANSACTION_RETRY,
    LazyClient,
    RetryPolicy,
    error_code,
    lazy,
    translate_errors,
)
from adapters.aws.dynamodb.items import (
    attribute_values,
    from_attribute_value,
    from_attribute_values,
)
from adapters.aws.dynamodb.keys import APPOINTMENT_SK, TRANSACTION_LIMIT, appointment_pk, key
from adapters.aws.dynamodb.transaction import (
    CONDITION_FAILED_REASON,
    TRANSIENT_REASONS,
    Cancelled,
    Transaction,
    cancellation_reasons,
)
from domain.errors import InvalidCursor, TemporarilyUnavailable
from ports.repositories import Cursor

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        PutItemOutputTypeDef,
        QueryInputTypeDef,
        UniversalAttributeValueTypeDef,
        WriteRequestTypeDef,
    )

    # What a repository accepts as its client: a boto3 one, a shared lazy one, or none yet.
    TableClient: TypeAlias = DynamoDBClient | LazyClient[DynamoDBClient] | None

SERVICE = "dynamodb"


def default_client() -> DynamoDBClient:
    """A DynamoDB client from the standard AWS environment (`AWS_ENDPOINT_URL_DYNAMODB`...)."""
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


class Table:
    """The shared plumbing: a lazy client and error translation at the adapter edge."""

    def __init__(self, table_name: str, client: TableClient) -> None:
        self.table_name = table_name
        self.client: LazyClient[DynamoDBClient] = lazy(client, default_client)

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item `(pk, sk)` (strongly consistent GetItem), or None."""
        with translate_errors(SERVICE):
            found = self.client().get_item(
                TableName=self.table_name, Key=key(pk, sk), ConsistentRead=True
            )
        item = found.get("Item")
        return from_attribute_values(item) if item is not None else None

    def put(self, item: Mapping[str, Any], **options: Any) -> PutItemOutputTypeDef:
        """One PutItem of `item`; a refused condition stays a ClientError for the caller."""
        with translate_errors(SERVICE):
            return self.client().put_item(
                TableName=self.table_name, Item=attribute_values(item), **options
            )

    def update(self, pk: str, sk: str, **options: Any) -> dict[str, Any]:
        """One UpdateItem of `(pk, sk)`; the attributes it returns, as plain values."""
        with translate_errors(SERVICE):
            answer = self.client().update_item(
                TableName=self.table_name, Key=key(pk, sk), **options
            )
        return from_attribute_values(answer.get("Attributes", {}))

    def delete(self, pk: str, sk: str) -> None:
        """One DeleteItem of `(pk, sk)`; deleting an absent item is no error."""
        with translate_errors(SERVICE):
            self.client().delete_item(TableName=self.table_name, Key=key(pk, sk))

    def query_up_to(self, limit: int, **request: Any) -> list[dict[str, Any]]:
        """Up to `limit` items of a Query (TableName added), paging on past the 1 MB cap."""
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            request["Limit"] = limit - len(items)
            with translate_errors(SERVICE):
                found = self.client().query(TableName=self.table_name, **request)
            items.extend(from_attribute_values(item) for item in found.get("Items", []))
            last = found.get("LastEvaluatedKey")
            if not last:
                break
            request["ExclusiveStartKey"] = last
        return items

    def query_all(self, **request: Any) -> list[dict[str, Any]]:
        """Every item of a Query (TableName added), page after page, as plain values."""
        items: list[dict[str, Any]] = []
        while True:
            with translate_errors(SERVICE):
                found = self.client().query(TableName=self.table_name, **request)
            items.extend(from_attribute_values(item) for item in found.get("Items", []))
            last = found.get("LastEvaluatedKey")
            if not last:
                return items
            request["ExclusiveStartKey"] = last

    def batch_get(
        self, keys: Sequence[tuple[str, str]], retry: RetryPolicy = BATCH_RETRY
    ) -> list[dict[str, Any]]:
        """The items of `(pk, sk)` keys that exist (one strongly consistent BatchGetItem, <=100)."""
        wanted: list[Any] = [key(pk, sk) for pk, sk in keys]
        found: list[dict[str, Any]] = []
        for _attempt in retry:
            if not wanted:
                return found
            with translate_errors(SERVICE):
                answer = self.client().batch_get_item(
                    RequestItems={self.table_name: {"Keys": wanted, "ConsistentRead": True}}
                )
            responses: Any = answer.get("Responses", {})
            found.extend(from_attribute_values(i) for i in responses.get(self.table_name, []))
            unprocessed: Any = answer.get("UnprocessedKeys", {})
            wanted = list(unprocessed.get(self.table_name, {}).get("Keys", []))
        if not wanted:
            return found
        raise TemporarilyUnavailable(
            "dynamodb left reads unprocessed, retry shortly", service=SERVICE
        )

    def batch_delete(
        self, keys: Sequence[tuple[str, str]], retry: RetryPolicy = BATCH_RETRY
    ) -> None:
        """Delete `(pk, sk)` items with one BatchWriteItem (at most 25; deletes are idempotent)."""
        requests: list[WriteRequestTypeDef] = [
            {"DeleteRequest": {"Key": key(pk, sk)}} for pk, sk in keys
        ]
        for _attempt in retry:
            with translate_errors(SERVICE):
                answer = self.client().batch_write_item(RequestItems={self.table_name: requests})
            unprocessed = answer.get("UnprocessedItems", {}).get(self.table_name, [])
            requests = [
                {"DeleteRequest": r["DeleteRequest"]} for r in unprocessed if "DeleteRequest" in r
            ]
            if not requests:
                return
        raise TemporarilyUnavailable(
            "dynamodb left outbox deletes unprocessed, retry shortly", service=SERVICE
        )

    def transact(self, tx: Transaction) -> None:
        """Commit `tx`; raise Cancelled if a condition refused it, 503 if contention stays."""
        if len(tx) > TRANSACTION_LIMIT:  # pragma: no cover - callers split before
            raise ValueError(f"a transaction holds at most {TRANSACTION_LIMIT} items")
        for attempt in TRANSACTION_RETRY:
            with translate_errors(SERVICE):
                try:
                    self.client().transact_write_items(TransactItems=tx.items)
                    return
                except ClientError as e:
                    if error_code(e) != "TransactionCanceledException":
                        raise
                    reasons = cancellation_reasons(e)
                    if CONDITION_FAILED_REASON in reasons:
                        raise Cancelled(reasons, e) from e
                    if not any(r in TRANSIENT_REASONS for r in reasons):
                        raise  # e.g. a ValidationError reason: a bug, not a busy table
                    if TRANSACTION_RETRY.is_last(attempt):
                        raise TemporarilyUnavailable(
                            "a conflicting request is being written, retry shortly",
                            service=SERVICE,
                        ) from e

    def query(self, **request: Any) -> list[dict[str, Any]]:
        """The items of one Query page of `request` (TableName added), as plain values."""
        with translate_errors(SERVICE):
            found = self.client().query(TableName=self.table_name, **request)
        return [from_attribute_values(item) for item in found.get("Items", [])]

    def query_page(
        self,
        index: str,
        partition: str,
        low: str | None,
        high: str | None,
        limit: int,
        cursor: Cursor,
        *,
        only: Mapping[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Query `index` for sort keys in [low, high): up to `limit` items and a cursor.

        Asks for one item more than `limit` to know, without a second call, whether a next
        page exists; the cursor is then the key of the last item returned. `only` keeps the
        items whose attributes equal its values (a FilterExpression): DynamoDB filters after
        `Limit`, so the Query goes on from where it stopped until the page is full.
        """
        pk_name, sk_name = f"{index}pk", f"{index}sk"
        start_key = check_cursor(cursor, pk_name, sk_name, partition, low, high)
        kwargs = _range_query(self.table_name, index, partition, low, high)
        if only:
            names = dict(kwargs.get("ExpressionAttributeNames", {}))
            values = dict(kwargs.get("ExpressionAttributeValues", {}))
            terms = []
            for n, (name, value) in enumerate(sorted(only.items())):
                names[f"#f{n}"] = name
                values[f":f{n}"] = attribute_values({"v": value})["v"]
                terms.append(f"#f{n} = :f{n}")
            kwargs["FilterExpression"] = " AND ".join(terms)
            kwargs["ExpressionAttributeNames"] = names
            kwargs["ExpressionAttributeValues"] = values
        kwargs["Limit"] = limit + 1
        items: list[dict[str, Any]] = []
        last_key: Mapping[str, Any] | None = None
        while True:
            if start_key is not None:
                kwargs["ExclusiveStartKey"] = start_key
            with translate_errors(SERVICE):
                found = self.client().query(**kwargs)
            items.extend(from_attribute_values(item) for item in found.get("Items", []))
            last_key = found.get("LastEvaluatedKey")
            # Without a filter one Query says it all; with one, go on until one item more
            # than the page is found or the partition ends.
            if not only or len(items) > limit or not last_key:
                break
            start_key = dict(last_key)
        if len(items) > limit:
            items = items[:limit]
            last = items[-1]
            return items, {k: last[k] for k in ("pk", "sk", pk_name, sk_name)}
        if last_key and items and not only:
            # The 1 MB page cap stopped the query early: more may follow.
            return items, {k: str(from_attribute_value(v)) for k, v in last_key.items()}
        return items, None


def _range_query(
    table_name: str, index: str, partition: str, low: str | None, high: str | None
) -> QueryInputTypeDef:
    """The Query of one index partition for sort keys in [low, high), oldest first."""
    names = {"#pk": f"{index}pk"}
    values: dict[str, Any] = {":pk": partition}
    if low is not None or high is not None:
        names["#sk"] = f"{index}sk"
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
    return {
        "TableName": table_name,
        "IndexName": index,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": attribute_values(values),
        "ScanIndexForward": True,
    }


def check_cursor(
    cursor: Cursor,
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
    # Every list partition starts with its clinic, and so must the appointment it names.
    prefix = appointment_pk(partition.split("#", 1)[0], "")
    if not pk.startswith(prefix) or sk != APPOINTMENT_SK:
        raise InvalidCursor("the cursor does not name an appointment")
    if not order.endswith("#" + pk.removeprefix(prefix)):
        raise InvalidCursor("the cursor's position does not match its appointment")
    if (low is not None and order < low) or (high is not None and order >= high):
        raise InvalidCursor("the cursor lies outside the requested range")
    return {k: {"S": v} for k, v in cursor.items()}
