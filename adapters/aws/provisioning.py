"""Idempotent provisioning with boto3: create the table and queues a spec describes, or check them.

Terraform owns AWS; this brings DynamoDB Local and the SQS emulator to the same shapes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from adapters.aws.client import error_code
from adapters.aws.terraform_spec import QueueSpec, ResourceNames, TableSpec, TerraformSpecError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

_QUEUE_NOT_FOUND = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})


class ProvisioningError(RuntimeError):
    """An existing resource does not match its Terraform definition."""


def _check_existing_table(table_name: str, spec: TableSpec, table: Mapping[str, Any]) -> None:
    expected = {
        "KeySchema": spec.key_schema(),
        "GlobalSecondaryIndexes": {
            index.name: index.key_schema() for index in spec.global_secondary_indexes
        },
    }
    actual = {
        "KeySchema": table.get("KeySchema", []),
        "GlobalSecondaryIndexes": {
            index["IndexName"]: index["KeySchema"]
            for index in table.get("GlobalSecondaryIndexes", [])
        },
    }
    if expected != actual:
        raise ProvisioningError(
            f"table {table_name} exists with another key schema: {actual!r}, expected {expected!r}"
        )


def provision_table(
    dynamodb_client: DynamoDBClient, table_name: str, spec: TableSpec, *, timeout: float = 120.0
) -> None:
    """Create the table if missing, wait until it is ACTIVE, then enable its TTL."""
    try:
        existing = dynamodb_client.describe_table(TableName=table_name)["Table"]
    except ClientError as error:
        if error_code(error) != "ResourceNotFoundException":
            raise
        try:
            dynamodb_client.create_table(**spec.create_table_kwargs(table_name))
        except ClientError as create_error:
            # Someone else created it between our describe and create: that is fine.
            if error_code(create_error) != "ResourceInUseException":
                raise
    else:
        _check_existing_table(table_name, spec, existing)

    deadline = time.monotonic() + timeout
    while True:
        status = dynamodb_client.describe_table(TableName=table_name)["Table"].get("TableStatus")
        if status == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise ProvisioningError(f"table {table_name} still {status} after {timeout:.0f}s")
        time.sleep(0.5)

    if spec.ttl_attribute is not None:
        _enable_ttl(dynamodb_client, table_name, spec.ttl_attribute)


def _enable_ttl(dynamodb_client: DynamoDBClient, table_name: str, attribute: str) -> None:
    current = dynamodb_client.describe_time_to_live(TableName=table_name)
    description = current.get("TimeToLiveDescription", {})
    if description.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
        if description.get("AttributeName") == attribute:
            return
        raise ProvisioningError(
            f"table {table_name} has TTL on {description.get('AttributeName')!r},"
            f" Terraform says {attribute!r}"
        )
    try:
        dynamodb_client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
        )
    except ClientError as error:
        # A concurrent provision enabled it first; AWS answers with a ValidationException.
        if error_code(error) != "ValidationException" or "already enabled" not in str(error):
            raise


def provision_queue(
    sqs_client: SQSClient, name: str, attributes: Mapping[QueueAttributeNameType, str]
) -> str:
    """Create the queue if missing, else bring its mutable attributes in line; return its URL."""
    try:
        url = sqs_client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error_code(error) not in _QUEUE_NOT_FOUND:
            raise
        return sqs_client.create_queue(QueueName=name, Attributes=dict(attributes))["QueueUrl"]
    # FifoQueue cannot change after creation, and SQS rejects it in SetQueueAttributes.
    mutable: dict[QueueAttributeNameType, str] = {
        key: value for key, value in attributes.items() if key != "FifoQueue"
    }
    if mutable:
        sqs_client.set_queue_attributes(QueueUrl=url, Attributes=mutable)
    return url


def _queue_arn(sqs_client: SQSClient, url: str) -> str:
    attributes = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _creation_order(specs: Mapping[str, QueueSpec]) -> list[QueueSpec]:
    # Dead-letter queues first: a source queue's redrive policy needs its DLQ's ARN.
    ordered: list[QueueSpec] = []
    visiting: set[str] = set()

    def visit(spec: QueueSpec) -> None:
        if spec in ordered:
            return
        if spec.resource in visiting:
            raise TerraformSpecError(f"dead-letter cycle through aws_sqs_queue.{spec.resource}")
        visiting.add(spec.resource)
        if spec.dead_letter_queue is not None:
            visit(specs[spec.dead_letter_queue])
        ordered.append(spec)

    for spec in specs.values():
        visit(spec)
    return ordered


def provision_queues(
    sqs_client: SQSClient, names: ResourceNames, specs: Mapping[str, QueueSpec]
) -> dict[str, str]:
    """Create every queue of `specs` under its physical name, DLQs first; return name -> URL."""
    urls: dict[str, str] = {}
    arns: dict[tuple[str, str], str] = {}
    for spec in _creation_order(specs):
        for country, name in names.queue_names(spec.resource).items():
            dead_letter_arn = None
            if spec.dead_letter_queue is not None:
                dead_letter_arn = arns[(spec.dead_letter_queue, country)]
            url = provision_queue(sqs_client, name, spec.attributes(dead_letter_arn))
            urls[name] = url
            arns[(spec.resource, country)] = _queue_arn(sqs_client, url)
    return urls
