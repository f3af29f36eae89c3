"""Table and queue shapes read from infra/terraform, and provisioning them with boto3.

Terraform is the single source of truth: the DynamoDB Local table of the tests, the resources
that `citas provision` creates and the deployed stack all come from the same `.tf` blocks.
This module reads the `.tf` files (python-hcl2, so it never goes to Lambda); the values it
reads are `terraform_spec`'s and `provisioning` creates them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import hcl2

from adapters.aws.provisioning import (
    ProvisioningError,
    provision_queue,
    provision_queues,
    provision_table,
)
from adapters.aws.terraform_spec import (
    BOOKING_DLQ,
    BOOKING_QUEUE,
    EVENTS_DLQ,
    EVENTS_QUEUE,
    LOCAL_ENVIRONMENT,
    LOCAL_PROJECT,
    QUEUE_RESOURCE_TYPE,
    TABLE_RESOURCE,
    IndexSpec,
    QueueSpec,
    ResourceNames,
    TableSpec,
    TerraformSpecError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

DEFAULT_TF_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"

_REFERENCE = re.compile(r"^\$\{\s*(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}$")
_MAX_RECEIVE_COUNT = re.compile(r"""["']?maxReceiveCount["']?\s*[=:]\s*([^,}\s]+)""")
_DEAD_LETTER_TARGET = re.compile(
    r"""["']?deadLetterTargetArn["']?\s*[=:]\s*"""
    r"aws_sqs_queue\.([A-Za-z_][A-Za-z0-9_-]*)(\[\s*each\.key\s*\])?\.arn"
)


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


# --- provisioning --------------------------------------------------------------------------


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
    return provision_queues(sqs_client, names, load_queue_specs(tf_dir, variables=variables))


__all__ = [
    "BOOKING_DLQ",
    "BOOKING_QUEUE",
    "DEFAULT_TF_DIR",
    "EVENTS_DLQ",
    "EVENTS_QUEUE",
    "LOCAL_ENVIRONMENT",
    "LOCAL_PROJECT",
    "QUEUE_RESOURCE_TYPE",
    "TABLE_RESOURCE",
    "IndexSpec",
    "ProvisioningError",
    "QueueSpec",
    "ResourceNames",
    "TableSpec",
    "TerraformSpecError",
    "load_queue_specs",
    "load_table_spec",
    "normalize_hcl",
    "parse_tf_file",
    "provision",
    "provision_queue",
    "provision_queues",
    "provision_table",
]
