"""Wires the DynamoDB and SQS adapters into the composition root's container.

`entrypoints.bootstrap` imports this module only when the aws backend is chosen. Registering
builds no boto3 client: the adapters share one lazily built DynamoDB client and one SQS client,
created on the first call that needs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from adapters.aws.client import LazyClient
from adapters.aws.dynamodb import (
    DynamoDBEventOutbox,
    DynamoDBProcessedEvents,
    DynamoDBRepositories,
    DynamoDBSentMessages,
)
from adapters.aws.dynamodb import default_client as default_dynamodb_client
from adapters.aws.sqs import SQSBookingRequestQueue, SQSEventPublisher
from adapters.aws.sqs import default_client as default_sqs_client
from ports.messaging import BookingRequestQueue, EventPublisher
from ports.patients import SentMessages
from ports.repositories import ClinicRepositories, EventOutbox, ProcessedEvents

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient


class AwsSettings(Protocol):
    """What the aws adapters need from `entrypoints.config.Settings`."""

    @property
    def table_name(self) -> str:
        """The DynamoDB table."""
        ...

    @property
    def events_queue_url(self) -> str | None:
        """The events FIFO queue, if this process publishes events."""
        ...

    @property
    def booking_queue_urls(self) -> Mapping[str, str]:
        """Country -> booking-request FIFO queue."""
        ...


class Container(Protocol):
    """The part of `punq.Container` used here."""

    def register(self, service: Any, *, instance: Any) -> Any:
        """Make `instance` the implementation of `service`."""
        ...


def register_aws_adapters(
    container: Container,
    settings: AwsSettings,
    *,
    dynamodb_client: DynamoDBClient | None = None,
    sqs_client: SQSClient | None = None,
) -> None:
    """Register the aws adapters of every storage and messaging port in `container`."""
    dynamodb = LazyClient(dynamodb_client, default_dynamodb_client)
    sqs = LazyClient(sqs_client, default_sqs_client)
    table = settings.table_name

    repositories = DynamoDBRepositories(table, dynamodb)
    outbox = DynamoDBEventOutbox(table, dynamodb)
    queue = SQSBookingRequestQueue(settings.booking_queue_urls, sqs)
    _register(container, repositories, ClinicRepositories, DynamoDBRepositories)
    _register(container, outbox, EventOutbox, DynamoDBEventOutbox)
    processed = DynamoDBProcessedEvents(table, dynamodb)
    _register(container, processed, ProcessedEvents, DynamoDBProcessedEvents)
    sent = DynamoDBSentMessages(table, dynamodb)
    _register(container, sent, SentMessages, DynamoDBSentMessages)
    _register(container, queue, BookingRequestQueue, SQSBookingRequestQueue)
    # Only the relay publishes; an API-only function may run without the events queue.
    if settings.events_queue_url is not None:
        publisher = SQSEventPublisher(settings.events_queue_url, sqs)
        _register(container, publisher, EventPublisher, SQSEventPublisher)


def _register(container: Container, instance: object, *services: object) -> None:
    for service in services:
        container.register(service, instance=instance)


# The name `entrypoints.bootstrap` calls.
register = register_aws_adapters
