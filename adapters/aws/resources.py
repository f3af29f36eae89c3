"""Table and queue shapes read from infra/terraform, and idempotent provisioning with boto3.

Terraform is the single source of truth: the DynamoDB Local table of the tests, the resources
that `citas provision` creates and the deployed stack all come from the same `.tf` blocks.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs
import hcl2
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

DEFAULT_TF_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"

TABLE_RESOURCE = ("aws_dynamodb_table", "citas")
QUEUE_RESOURCE_TYPE = "aws_sqs_queue"

# Terraform resource name of each queue -> the ResourceNames role it plays.
EVENTS_QUEUE = "events"
EVENTS_DLQ = "events_dlq"
BOOKING_QUEUE = "booking_requests"
BOOKING_DLQ = "booking_requests_dlq"

LOCAL_PROJECT = "citas"
LOCAL_ENVIRONMENT = "local"

_REFERENCE = re.compile(r"^\$\{\s*(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}$")
_MAX_RECEIVE_COUNT = re.compile(r"""["']?maxReceiveCount["']?\s*[=:]\s*([^,}\s]+)""")
_DEAD_LETTER_TARGET = re.compile(
    r"""["']?deadLetterTargetArn["']?\s*[=:]\s*"""
    r"aws_sqs_queue\.([A-Za-z_][A-Za-z0-9_-]*)(\[\s*each\.key\s*\])?\.arn"
)
_QUEUE_NOT_FOUND = frozenset({"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"})


class TerraformSpecError(ValueError):
    """The Terraform files do not describe the resources the way this module expects."""


class ProvisioningError(RuntimeError):
    """An existing resource does not match its Terraform definition."""


# --- reading python-hcl2 output ------------------------------------------------------------
#
# python-hcl2 changed its output across major versions: 4.x gives `"pk"` as `pk`, 8.x keeps
# the quotes (`'"pk"'`), quotes block labels (`'"aws_sqs_queue"'`) and adds `__is_block__` and
# `__comments__` keys. Expressions are `${...}` in every version. Normalising once here keeps
# the rest of the module version-independent.


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return text


def normalize_hcl(value: Any) -> Any:
    """Strip python-hcl2's version-specific quoting and metadata keys from a parsed tree."""
    if isinstance(value, dict):
        return {
            _unquote(str(key)): normalize_hcl(item)
            for key, item in value.items()
            if not (str(key).startswith("__") and str(key).endswith("__"))
        }
    if isinstance(value, list):
        return [normalize_hcl(item) for item in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def parse_tf_file(path: Path) -> dict[str, Any]:
    """Parse one `.tf` file with python-hcl2 and normalise the result."""
    with path.open(encoding="utf-8") as handle:
        tree = normalize_hcl(hcl2.load(handle))
    if not isinstance(tree, dict):
        raise TerraformSpecError(f"{path}: unexpected python-hcl2 output {type(tree).__name__}")
    return tree


def _resources(tree: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for group in tree.get("resource", []):
        for type_name, by_name in group.items():
            if type_name != resource_type:
                continue
            for name, body in by_name.items():
                found[name] = body
    return found


def _locals(tree: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in tree.get("locals", []):
        merged.update(block)
    return merged


def _variable_defaults(tf_dir: Path) -> dict[str, Any]:
    path = tf_dir / "variables.tf"
    if not path.exists():
        return {}
    defaults: dict[str, Any] = {}
    for group in parse_tf_file(path).get("variable", []):
        for name, body in group.items():
            if "default" in body:
                defaults[name] = body["default"]
    return defaults


def _single_block(body: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    blocks = body.get(key)
    if blocks is None:
        return None
    if isinstance(blocks, dict):
        return blocks
    if isinstance(blocks, list) and len(blocks) == 1 and isinstance(blocks[0], dict):
        return blocks[0]
    raise TerraformSpecError(f"expected one {key!r} block, got {blocks!r}")


def _blocks(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    blocks = body.get(key, [])
    return [blocks] if isinstance(blocks, dict) else list(blocks)


@attrs.frozen
class _Scope:
    """Values that `var.x` and `local.x` references resolve to."""

    variables: Mapping[str, Any]
    local_values: Mapping[str, Any]

    def resolve(self, value: Any, *, seen: tuple[str, ...] = ()) -> Any:
        """Resolve a literal or a single `${var.x}` / `${local.x}` reference to a value."""
        if not isinstance(value, str):
            return value
        match = _REFERENCE.match(value.strip())
        if match is None:
            if "${" in value:
                raise TerraformSpecError(f"cannot evaluate expression {value!r}")
            return value
        kind, name = match.groups()
        key = f"{kind}.{name}"
        if key in seen:
            raise TerraformSpecError(f"reference cycle through {key}")
        source = self.variables if kind == "var" else self.local_values
        if name not in source:
            raise TerraformSpecError(f"{key} has no value (no default in variables.tf?)")
        return self.resolve(source[name], seen=(*seen, key))

    def text(self, value: Any) -> str:
        """Resolve a value that must be a string."""
        resolved = self.resolve(value)
        if not isinstance(resolved, str):
            raise TerraformSpecError(f"expected a string, got {resolved!r}")
        return resolved

    def integer(self, value: Any) -> int:
        """Resolve a value that must be a whole number."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            raise TerraformSpecError(f"expected a number, got {resolved!r}")
        if isinstance(resolved, int):
            return resolved
        if isinstance(resolved, float) and resolved.is_integer():
            return int(resolved)
        if isinstance(resolved, str) and resolved.strip().isdigit():
            return int(resolved)
        raise TerraformSpecError(f"expected a number, got {resolved!r}")

    def boolean(self, value: Any) -> bool:
        """Resolve a value that must be true or false."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return resolved
        if isinstance(resolved, str) and resolved.lower() in {"true", "false"}:
            return resolved.lower() == "true"
        raise TerraformSpecError(f"expected a bool, got {resolved!r}")


def _scope(tf_dir: Path, tree: Mapping[str, Any], variables: Mapping[str, Any] | None) -> _Scope:
    values = _variable_defaults(tf_dir)
    values.update(variables or {})
    return _Scope(variables=values, local_values=_locals(tree))


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


def load_table_spec(
    tf_dir: Path | None = None, *, variables: Mapping[str, Any] | None = None
) -> TableSpec:
    """Read the `aws_dynamodb_table.citas` block of `dynamodb.tf` into a TableSpec."""
    tf_dir = tf_dir or DEFAULT_TF_DIR
    tree = parse_tf_file(tf_dir / "dynamodb.tf")
    scope = _scope(tf_dir, tree, variables)
    resource_type, resource_name = TABLE_RESOURCE
    body = _resources(tree, resource_type).get(resource_name)
    if body is None:
        raise TerraformSpecError(f"{tf_dir / 'dynamodb.tf'}: no {resource_type}.{resource_name}")

    billing_mode = scope.text(body.get("billing_mode", "PROVISIONED"))
    if billing_mode != "PAY_PER_REQUEST":
        raise TerraformSpecError(f"only PAY_PER_REQUEST tables are supported, got {billing_mode}")

    indexes = tuple(
        IndexSpec(
            name=scope.text(gsi["name"]),
            hash_key=scope.text(gsi["hash_key"]),
            range_key=scope.text(gsi["range_key"]) if "range_key" in gsi else None,
            projection_type=scope.text(gsi.get("projection_type", "ALL")),
            non_key_attributes=tuple(
                scope.text(item) for item in gsi.get("non_key_attributes") or ()
            ),
        )
        for gsi in _blocks(body, "global_secondary_index")
    )
    ttl = _single_block(body, "ttl")
    ttl_enabled = ttl is not None and scope.boolean(ttl.get("enabled", False))
    pitr = _single_block(body, "point_in_time_recovery")
    stream_enabled = scope.boolean(body.get("stream_enabled", False))
    return TableSpec(
        hash_key=scope.text(body["hash_key"]),
        range_key=scope.text(body["range_key"]) if "range_key" in body else None,
        attributes=tuple(
            (scope.text(attr["name"]), scope.text(attr["type"]))
            for attr in _blocks(body, "attribute")
        ),
        global_secondary_indexes=indexes,
        billing_mode=billing_mode,
        stream_enabled=stream_enabled,
        stream_view_type=(
            scope.text(body["stream_view_type"])
            if stream_enabled and "stream_view_type" in body
            else None
        ),
        ttl_attribute=scope.text(ttl["attribute_name"]) if ttl and ttl_enabled else None,
        point_in_time_recovery=pitr is not None and scope.boolean(pitr.get("enabled", False)),
    )


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


def _redrive(scope: _Scope, resource: str, policy: Any) -> tuple[str, int, bool]:
    text = policy if isinstance(policy, str) else json.dumps(policy)
    target = _DEAD_LETTER_TARGET.search(text)
    count = _MAX_RECEIVE_COUNT.search(text)
    if target is None or count is None:
        raise TerraformSpecError(f"aws_sqs_queue.{resource}: cannot read redrive_policy {text!r}")
    raw_count = count.group(1).strip("\"'")
    if re.fullmatch(r"(var|local)\.[A-Za-z_][A-Za-z0-9_-]*", raw_count):
        raw_count = "${" + raw_count + "}"
    return target.group(1), scope.integer(raw_count), target.group(2) is not None


def load_queue_specs(
    tf_dir: Path | None = None, *, variables: Mapping[str, Any] | None = None
) -> dict[str, QueueSpec]:
    """Read every `aws_sqs_queue` block of `sqs.tf`, keyed by Terraform resource name."""
    tf_dir = tf_dir or DEFAULT_TF_DIR
    tree = parse_tf_file(tf_dir / "sqs.tf")
    scope = _scope(tf_dir, tree, variables)
    specs: dict[str, QueueSpec] = {}
    for resource, body in _resources(tree, QUEUE_RESOURCE_TYPE).items():
        dead_letter_queue: str | None = None
        max_receive_count: int | None = None
        per_country = "for_each" in body
        if body.get("redrive_policy") is not None:
            dead_letter_queue, max_receive_count, indexed = _redrive(
                scope, resource, body["redrive_policy"]
            )
            if indexed != per_country:
                raise TerraformSpecError(
                    f"aws_sqs_queue.{resource} and its DLQ {dead_letter_queue} must both be"
                    " per country or both single"
                )
        specs[resource] = QueueSpec(
            resource=resource,
            fifo=scope.boolean(body.get("fifo_queue", False)),
            content_based_deduplication=scope.boolean(
                body.get("content_based_deduplication", False)
            ),
            visibility_timeout_seconds=(
                scope.integer(body["visibility_timeout_seconds"])
                if "visibility_timeout_seconds" in body
                else None
            ),
            message_retention_seconds=(
                scope.integer(body["message_retention_seconds"])
                if "message_retention_seconds" in body
                else None
            ),
            max_receive_count=max_receive_count,
            dead_letter_queue=dead_letter_queue,
            per_country=per_country,
        )
    for spec in specs.values():
        if spec.dead_letter_queue is not None and spec.dead_letter_queue not in specs:
            raise TerraformSpecError(
                f"aws_sqs_queue.{spec.resource}: dead-letter queue"
                f" aws_sqs_queue.{spec.dead_letter_queue} is not declared"
            )
    return specs


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


# --- provisioning --------------------------------------------------------------------------


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


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
        if _error_code(error) != "ResourceNotFoundException":
            raise
        try:
            dynamodb_client.create_table(**spec.create_table_kwargs(table_name))
        except ClientError as create_error:
            # Someone else created it between our describe and create: that is fine.
            if _error_code(create_error) != "ResourceInUseException":
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
        if _error_code(error) != "ValidationException" or "already enabled" not in str(error):
            raise


def provision_queue(
    sqs_client: SQSClient, name: str, attributes: Mapping[QueueAttributeNameType, str]
) -> str:
    """Create the queue if missing, else bring its mutable attributes in line; return its URL."""
    try:
        url = sqs_client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if _error_code(error) not in _QUEUE_NOT_FOUND:
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


def provision(
    dynamodb_client: DynamoDBClient,
    sqs_client: SQSClient,
    names: ResourceNames,
    tf_dir: Path | None = None,
    *,
    variables: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Create the table and every queue of `infra/terraform` if missing; return name -> URL.

    KMS encryption, point-in-time recovery and deletion protection are left to Terraform:
    local emulators either ignore them or have no KMS key to point at.
    """
    provision_table(dynamodb_client, names.table, load_table_spec(tf_dir, variables=variables))

    specs = load_queue_specs(tf_dir, variables=variables)
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
