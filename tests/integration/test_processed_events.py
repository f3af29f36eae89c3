"""DynamoDBProcessedEvents on DynamoDB Local: each consumer handles an event once per week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from adapters.aws.dynamodb import (
    DynamoDBProcessedEvents,
    DynamoDBRepositories,
    DynamoDBSentMessages,
)
from adapters.clinics import StaticClinicDirectory
from adapters.links import random_link_keys
from adapters.memory.store import InMemoryNotifier
from domain.clinics import DEMO_CLINIC
from domain.errors import TemporarilyUnavailable
from domain.use_cases import PatientMessenger
from domain.use_cases.links import Links
from tests.integration.aws_world import (
    WED,
    Repositories,
    World,
    at,
    booking,
    fresh_table,
    local_client,
)
from tests.support.dynamodb_local import free_port

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

pytestmark = pytest.mark.dynamodb_local

WRITTEN_AT = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def table(dynamodb_local_client: DynamoDBClient) -> str:
    """A fresh table of the Terraform shape."""
    return fresh_table(dynamodb_local_client)


@pytest.fixture
def processed(dynamodb_local_client: DynamoDBClient, table: str) -> DynamoDBProcessedEvents:
    """The adapter, writing as if the time were WRITTEN_AT."""
    return DynamoDBProcessedEvents(table, dynamodb_local_client, now=lambda: WRITTEN_AT)


def test_a_key_is_unseen_until_remembered(processed: DynamoDBProcessedEvents) -> None:
    assert not processed.seen("notify:event-1")
    processed.remember("notify:event-1")
    assert processed.seen("notify:event-1")
    assert not processed.seen("notify:event-2")
    assert not processed.seen("other-consumer:event-1")


def test_remembering_twice_is_harmless(processed: DynamoDBProcessedEvents) -> None:
    processed.remember("notify:event-1")
    processed.remember("notify:event-1")
    assert processed.seen("notify:event-1")


def test_the_marker_item_expires_a_week_after_it_is_written(
    processed: DynamoDBProcessedEvents, dynamodb_local_client: DynamoDBClient, table: str
) -> None:
    processed.remember("notify:event-1")
    item = dynamodb_local_client.get_item(
        TableName=table,
        Key={"pk": {"S": "DONE#notify:event-1"}, "sk": {"S": "DONE"}},
        ConsistentRead=True,
    )["Item"]
    expires_at = int(item["expires_at"]["N"])
    assert expires_at == int((WRITTEN_AT + timedelta(days=7)).timestamp())
    # The attribute the table's TTL (from Terraform) deletes by, so markers do not pile up.
    ttl = dynamodb_local_client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl.get("AttributeName") == "expires_at"
    assert set(item) == {"pk", "sk", "expires_at"}


def test_without_a_clock_the_expiry_is_a_week_from_now(
    dynamodb_local_client: DynamoDBClient, table: str
) -> None:
    before = datetime.now(UTC)
    DynamoDBProcessedEvents(table, dynamodb_local_client).remember("notify:event-1")
    after = datetime.now(UTC)
    item = dynamodb_local_client.get_item(
        TableName=table, Key={"pk": {"S": "DONE#notify:event-1"}, "sk": {"S": "DONE"}}
    )["Item"]
    expires_at = int(item["expires_at"]["N"])
    week = timedelta(days=7)
    assert int((before + week).timestamp()) <= expires_at <= int((after + week).timestamp())


def test_an_unreachable_endpoint_is_temporarily_unavailable() -> None:
    client = local_client(
        f"http://127.0.0.1:{free_port()}",
        connect_timeout=0.5,
        read_timeout=0.5,
        retries={"mode": "standard", "max_attempts": 1},
    )
    processed = DynamoDBProcessedEvents("citas-nowhere", client)
    with pytest.raises(TemporarilyUnavailable):
        processed.seen("notify:event-1")
    with pytest.raises(TemporarilyUnavailable):
        processed.remember("notify:event-1")


def test_a_missing_table_is_a_bug_not_a_busy_backend(
    dynamodb_local_client: DynamoDBClient,
) -> None:
    from botocore.exceptions import ClientError

    processed = DynamoDBProcessedEvents("citas-no-such-table", dynamodb_local_client)
    with pytest.raises(ClientError):
        processed.seen("notify:event-1")


def test_the_patient_messenger_sends_once_for_a_redelivered_event(
    dynamodb_local_client: DynamoDBClient, table: str
) -> None:
    world = World(Repositories.dynamodb(table, dynamodb_local_client))
    world.clinic.book(booking(at(WED, "10:00")))
    (event,) = world.repos.outbox.pending(10)
    notifier = InMemoryNotifier()
    messenger = PatientMessenger(
        StaticClinicDirectory([(DEMO_CLINIC, "local-demo")]),
        DynamoDBRepositories(table, dynamodb_local_client),
        notifier,
        DynamoDBProcessedEvents(table, dynamodb_local_client),
        DynamoDBSentMessages(table, dynamodb_local_client),
        Links(random_link_keys(), None),
        world.clock,
    )
    assert messenger.handle(event) is True
    # SQS delivers at least once: the same event again sends nothing.
    assert messenger.handle(event) is False
    assert len(notifier.sent) == 1
