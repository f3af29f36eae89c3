"""What infra/terraform declares, as values: the table's and queues' shapes and their names.

Plain values with no parsing and no I/O: `resources` reads them from the `.tf` files and
`provisioning` creates what they describe.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from mypy_boto3_sqs.literals import QueueAttributeNameType

TABLE_RESOURCE = ("aws_dynamodb_table", "citas")
QUEUE_RESOURCE_TYPE = "aws_sqs_queue"

# Terraform resource name of each queue -> the ResourceNames role it plays.
EVENTS_QUEUE = "events"
EVENTS_DLQ = "events_dlq"
BOOKING_QUEUE = "booking_requests"
BOOKING_DLQ = "booking_requests_dlq"

LOCAL_PROJECT = "citas"
LOCAL_ENVIRONMENT = "local"


class TerraformSpecError(ValueError):
    """The Terraform files do not describe the resources the way this module expects."""


# --- the table -----------------------------------------------------------------------------


@attrs.frozen
class IndexSpec:
    """A global secondary index as Terraform declares it."""

    name: str
    hash_key: str
    range_key: str | None
    projection_type: str
    non_key_attributes: tuple[str, ...] = ()

    def key_schema(self) -> list[dict[str, str]]:
        """Return the index's boto3 `KeySchema`."""
        return _key_schema(self.hash_key, self.range_key)

    def create_kwargs(self) -> dict[str, Any]:
        """Return the boto3 `GlobalSecondaryIndexes` entry for this index."""
        projection: dict[str, Any] = {"ProjectionType": self.projection_type}
        if self.non_key_attributes:
            projection["NonKeyAttributes"] = list(self.non_key_attributes)
        return {"IndexName": self.name, "KeySchema": self.key_schema(), "Projection": projection}


def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return schema


@attrs.frozen
class TableSpec:
    """The DynamoDB table's shape: keys, indexes, stream and TTL, without its name."""

    hash_key: str
    range_key: str | None
    attributes: tuple[tuple[str, str], ...]
    global_secondary_indexes: tuple[IndexSpec, ...]
    billing_mode: str
    stream_enabled: bool
    stream_view_type: str | None
    ttl_attribute: str | None
    point_in_time_recovery: bool = False

    def index(self, name: str) -> IndexSpec:
        """Return the global secondary index called `name`."""
        for index in self.global_secondary_indexes:
            if index.name == name:
                return index
        raise KeyError(name)

    def key_schema(self) -> list[dict[str, str]]:
        """Return the table's boto3 `KeySchema`."""
        return _key_schema(self.hash_key, self.range_key)

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        """Return the keyword arguments of boto3 `create_table` for this table."""
        stream: dict[str, Any] = {"StreamEnabled": self.stream_enabled}
        if self.stream_enabled and self.stream_view_type is not None:
            stream["StreamViewType"] = self.stream_view_type
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": self.key_schema(),
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": kind} for name, kind in self.attributes
            ],
            "BillingMode": self.billing_mode,
            "StreamSpecification": stream,
        }
        if self.global_secondary_indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                index.create_kwargs() for index in self.global_secondary_indexes
            ]
        return kwargs


# --- the queues ----------------------------------------------------------------------------


@attrs.frozen
class QueueSpec:
    """One `aws_sqs_queue` block: its settings and, if any, the queue it dead-letters to."""

    resource: str
    fifo: bool
    content_based_deduplication: bool
    visibility_timeout_seconds: int | None
    message_retention_seconds: int | None
    max_receive_count: int | None
    dead_letter_queue: str | None
    per_country: bool

    @property
    def has_dlq(self) -> bool:
        """Tell whether failed messages of this queue move to a dead-letter queue."""
        return self.dead_letter_queue is not None

    def attributes(self, dead_letter_arn: str | None = None) -> dict[QueueAttributeNameType, str]:
        """Return the SQS queue attributes; pass the DLQ's ARN when the queue has one."""
        attributes: dict[QueueAttributeNameType, str] = {}
        if self.fifo:
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = str(self.content_based_deduplication).lower()
        if self.visibility_timeout_seconds is not None:
            attributes["VisibilityTimeout"] = str(self.visibility_timeout_seconds)
        if self.message_retention_seconds is not None:
            attributes["MessageRetentionPeriod"] = str(self.message_retention_seconds)
        if self.has_dlq:
            if dead_letter_arn is None:
                raise ValueError(f"queue {self.resource} needs its dead-letter queue's ARN")
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": self.max_receive_count}
            )
        return attributes


# --- physical names ------------------------------------------------------------------------


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class ResourceNames:
    """The physical names of the table and queues of one deployment."""

    table: str
    events_queue: str
    events_dlq: str
    booking_queues: Mapping[str, str] = attrs.field(converter=_frozen_mapping)
    booking_dlqs: Mapping[str, str] = attrs.field(converter=_frozen_mapping)

    @booking_dlqs.validator
    def _same_countries(self, _attribute: object, value: Mapping[str, str]) -> None:
        if set(value) != set(self.booking_queues):
            raise ValueError("booking_queues and booking_dlqs must name the same countries")

    @classmethod
    def for_environment(
        cls, project: str, environment: str, countries: tuple[str, ...] | list[str]
    ) -> ResourceNames:
        """Build the names that `infra/terraform` gives for this project and environment."""
        prefix = f"{project}-{environment}"
        return cls(
            table=prefix,
            events_queue=f"{prefix}-events.fifo",
            events_dlq=f"{prefix}-events-dlq.fifo",
            booking_queues={c: f"{prefix}-booking-requests-{c.lower()}.fifo" for c in countries},
            booking_dlqs={c: f"{prefix}-booking-requests-{c.lower()}-dlq.fifo" for c in countries},
        )

    @classmethod
    def local_defaults(cls, countries: tuple[str, ...] | list[str] = ("PE", "CL")) -> ResourceNames:
        """Return the names used on local emulators (project `citas`, environment `local`)."""
        return cls.for_environment(LOCAL_PROJECT, LOCAL_ENVIRONMENT, countries)

    def queue_names(self, resource: str) -> dict[str, str]:
        """Map country (or `""` for a single queue) to name for a Terraform queue resource."""
        if resource == EVENTS_QUEUE:
            return {"": self.events_queue}
        if resource == EVENTS_DLQ:
            return {"": self.events_dlq}
        if resource == BOOKING_QUEUE:
            return dict(self.booking_queues)
        if resource == BOOKING_DLQ:
            return dict(self.booking_dlqs)
        raise TerraformSpecError(f"no physical name known for aws_sqs_queue.{resource}")

    def all_queues(self) -> Iterator[str]:
        """Yield every queue name, dead-letter queues included."""
        yield self.events_queue
        yield self.events_dlq
        yield from self.booking_queues.values()
        yield from self.booking_dlqs.values()
