"""The Terraform files are the single source of the table and queue shapes.

`adapters.aws.resources` reads them; these tests check what it reads, then provision the table
on DynamoDB Local (AWS's own engine) and the queues on moto, twice, and compare.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import hcl2
import pytest
from moto import mock_aws

from adapters.aws import resources
from adapters.aws.resources import (
    DEFAULT_TF_DIR,
    ProvisioningError,
    QueueSpec,
    ResourceNames,
    TerraformSpecError,
    load_queue_specs,
    load_table_spec,
    normalize_hcl,
    parse_tf_file,
    provision,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

TF_DIR = Path(__file__).resolve().parents[2] / "infra" / "terraform"
COUNTRIES = ("PE", "CL")


# --- parsing -------------------------------------------------------------------------------


def test_default_tf_dir_is_the_repository_terraform() -> None:
    assert DEFAULT_TF_DIR == TF_DIR
    assert (DEFAULT_TF_DIR / "dynamodb.tf").is_file()


def test_python_hcl2_parse_of_dynamodb_tf_yields_gsi1_and_gsi2() -> None:
    with (TF_DIR / "dynamodb.tf").open() as handle:
        raw = hcl2.load(handle)
    tree = normalize_hcl(raw)
    (table,) = [
        body
        for group in tree["resource"]
        for kind, by_name in group.items()
        if kind == "aws_dynamodb_table"
        for body in by_name.values()
    ]
    indexes = {gsi["name"]: gsi for gsi in table["global_secondary_index"]}
    assert set(indexes) == {"gsi1", "gsi2"}
    assert (indexes["gsi1"]["hash_key"], indexes["gsi1"]["range_key"]) == ("gsi1pk", "gsi1sk")
    assert (indexes["gsi2"]["hash_key"], indexes["gsi2"]["range_key"]) == ("gsi2pk", "gsi2sk")

    spec = load_table_spec()
    assert [index.name for index in spec.global_secondary_indexes] == ["gsi1", "gsi2"]


def test_normalize_hcl_gives_one_shape_for_old_and_new_python_hcl2_output() -> None:
    # python-hcl2 >= 7/8: quoted strings and labels, block and comment markers.
    new_style = {
        "resource": [
            {
                '"aws_sqs_queue"': {
                    '"events"': {
                        "name": "${local.events_queue_name}",
                        "fifo_queue": True,
                        "visibility_timeout_seconds": 60,
                        "tags": {'"Team"': '"say \\"hola\\""'},
                        "__is_block__": True,
                        "__start_line__": 3,
                    }
                }
            }
        ],
        "variable": [{'"countries"': {"default": ['"PE"', '"CL"'], "__is_block__": True}}],
        "__comments__": [{"value": "a comment"}],
    }
    # python-hcl2 4.x: bare strings, no markers.
    old_style = {
        "resource": [
            {
                "aws_sqs_queue": {
                    "events": {
                        "name": "${local.events_queue_name}",
                        "fifo_queue": True,
                        "visibility_timeout_seconds": 60,
                        "tags": {"Team": 'say "hola"'},
                    }
                }
            }
        ],
        "variable": [{"countries": {"default": ["PE", "CL"]}}],
    }
    assert normalize_hcl(new_style) == old_style
    assert normalize_hcl(old_style) == old_style


def test_specs_do_not_depend_on_python_hcl2_output_style(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected_table, expected_queues = load_table_spec(), load_queue_specs()
    bare = hcl2.SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    real_load = hcl2.load

    def load_bare(handle: Any) -> Any:
        return real_load(handle, serialization_options=bare)

    monkeypatch.setattr(hcl2, "load", load_bare)
    assert load_table_spec() == expected_table
    assert load_queue_specs() == expected_queues


def test_table_spec_is_what_the_design_needs() -> None:
    spec = load_table_spec()
    assert (spec.hash_key, spec.range_key) == ("pk", "sk")
    assert dict(spec.attributes) == {
        name: "S" for name in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
    }
    assert spec.billing_mode == "PAY_PER_REQUEST"
    assert spec.ttl_attribute == "expires_at"
    assert spec.stream_enabled
    assert spec.stream_view_type == "NEW_IMAGE"
    assert spec.point_in_time_recovery
    assert {index.projection_type for index in spec.global_secondary_indexes} == {"ALL"}

    kwargs = spec.create_table_kwargs("t")
    assert kwargs["TableName"] == "t"
    assert kwargs["BillingMode"] == "PAY_PER_REQUEST"
    assert kwargs["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert kwargs["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert [gsi["IndexName"] for gsi in kwargs["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2"]
    assert kwargs["GlobalSecondaryIndexes"][0]["Projection"] == {"ProjectionType": "ALL"}


def test_queue_specs_are_fifo_with_dead_letter_queues() -> None:
    specs = load_queue_specs()
    assert set(specs) == {"events", "events_dlq", "booking_requests", "booking_requests_dlq"}
    for spec in specs.values():
        assert spec.fifo
        assert not spec.content_based_deduplication
    for source, dlq in (("events", "events_dlq"), ("booking_requests", "booking_requests_dlq")):
        assert specs[source].dead_letter_queue == dlq
        assert specs[source].max_receive_count == 5
        assert specs[source].visibility_timeout_seconds == 60
        assert specs[source].message_retention_seconds == 1209600
        assert not specs[dlq].has_dlq
        assert specs[dlq].message_retention_seconds == 1209600
    assert specs["booking_requests"].per_country
    assert not specs["events"].per_country


def test_variables_override_terraform_defaults() -> None:
    specs = load_queue_specs(variables={"max_receive_count": 3, "message_retention_seconds": 600})
    assert specs["events"].max_receive_count == 3
    assert specs["events"].message_retention_seconds == 600
    # DLQ retention is a local, not a variable.
    assert specs["events_dlq"].message_retention_seconds == 1209600


def test_unreadable_expressions_are_reported(tmp_path: Path) -> None:
    (tmp_path / "dynamodb.tf").write_text(
        'resource "aws_dynamodb_table" "citas" {\n'
        '  billing_mode = "PAY_PER_REQUEST"\n'
        '  hash_key     = lower("PK")\n'
        "}\n"
    )
    with pytest.raises(TerraformSpecError, match="cannot evaluate"):
        load_table_spec(tmp_path)


def test_queue_attributes_need_the_dlq_arn() -> None:
    spec = load_queue_specs()["events"]
    with pytest.raises(ValueError, match="ARN"):
        spec.attributes()
    attributes = spec.attributes("arn:aws:sqs:us-east-1:000000000000:dlq.fifo")
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq.fifo",
        "maxReceiveCount": 5,
    }


def _render(template: str, project: str, environment: str, country: str = "") -> str:
    prefix = f"{project}-{environment}"
    return (
        template.replace("${local.name_prefix}", prefix)
        .replace("${var.project}", project)
        .replace("${var.environment}", environment)
        .replace("${lower(country)}", country.lower())
    )


def test_resource_names_follow_the_terraform_locals() -> None:
    table_locals = parse_tf_file(TF_DIR / "dynamodb.tf")["locals"][0]
    queue_locals = parse_tf_file(TF_DIR / "sqs.tf")["locals"][0]
    names = ResourceNames.for_environment("citas", "dev", COUNTRIES)

    def per_country(expression: str) -> str:
        match = re.search(r'=>\s*"([^"]+)"', expression)
        assert match, expression
        return match.group(1)

    assert names.table == _render(table_locals["table_name"], "citas", "dev")
    assert names.events_queue == _render(queue_locals["events_queue_name"], "citas", "dev")
    assert names.events_dlq == _render(queue_locals["events_dlq_name"], "citas", "dev")
    for country in COUNTRIES:
        queue = per_country(queue_locals["booking_queue_names"])
        dlq = per_country(queue_locals["booking_dlq_names"])
        assert names.booking_queues[country] == _render(queue, "citas", "dev", country)
        assert names.booking_dlqs[country] == _render(dlq, "citas", "dev", country)


def test_local_default_names() -> None:
    names = ResourceNames.local_defaults()
    assert names.table == "citas-local"
    assert names.events_queue == "citas-local-events.fifo"
    assert names.events_dlq == "citas-local-events-dlq.fifo"
    assert dict(names.booking_queues) == {
        "PE": "citas-local-booking-requests-pe.fifo",
        "CL": "citas-local-booking-requests-cl.fifo",
    }
    assert dict(names.booking_dlqs) == {
        "PE": "citas-local-booking-requests-pe-dlq.fifo",
        "CL": "citas-local-booking-requests-cl-dlq.fifo",
    }
    with pytest.raises(ValueError, match="same countries"):
        ResourceNames("t", "q.fifo", "d.fifo", {"PE": "a.fifo"}, {"CL": "b.fifo"})


# --- provisioning on DynamoDB Local and moto -----------------------------------------------


@pytest.fixture
def sqs_client() -> Iterator[SQSClient]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def names() -> ResourceNames:
    # One DynamoDB Local serves the whole session: a fresh environment name isolates each test.
    return ResourceNames.for_environment("citas", f"t{uuid.uuid4().hex[:12]}", COUNTRIES)


def _queue_attributes(sqs_client: SQSClient, url: str) -> dict[str, str]:
    attributes = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return {str(name): value for name, value in attributes["Attributes"].items()}


@pytest.mark.dynamodb_local
def test_provision_creates_the_terraform_table_and_queues_idempotently(
    dynamodb_local_client: DynamoDBClient, sqs_client: SQSClient, names: ResourceNames
) -> None:
    first = provision(dynamodb_local_client, sqs_client, names)
    second = provision(dynamodb_local_client, sqs_client, names)

    assert first == second
    assert set(first) == set(names.all_queues())
    assert len(sqs_client.list_queues(QueueNamePrefix=names.table)["QueueUrls"]) == 6

    spec = load_table_spec()
    table = dynamodb_local_client.describe_table(TableName=names.table)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["KeySchema"] == spec.key_schema()
    assert sorted(
        (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
    ) == sorted(spec.attributes)
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"gsi1", "gsi2"}
    for index in spec.global_secondary_indexes:
        assert indexes[index.name]["KeySchema"] == index.key_schema()
        assert indexes[index.name]["Projection"]["ProjectionType"] == index.projection_type
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["LatestStreamArn"]
    assert table.get("BillingModeSummary", {}).get("BillingMode", "PAY_PER_REQUEST") == (
        "PAY_PER_REQUEST"
    )
    ttl = dynamodb_local_client.describe_time_to_live(TableName=names.table)
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }

    specs = load_queue_specs()
    events = _queue_attributes(sqs_client, first[names.events_queue])
    events_dlq = _queue_attributes(sqs_client, first[names.events_dlq])
    _assert_queue(events, specs["events"], dlq_arn=events_dlq["QueueArn"])
    _assert_queue(events_dlq, specs["events_dlq"], dlq_arn=None)
    for country in COUNTRIES:
        booking = _queue_attributes(sqs_client, first[names.booking_queues[country]])
        booking_dlq = _queue_attributes(sqs_client, first[names.booking_dlqs[country]])
        _assert_queue(booking, specs["booking_requests"], dlq_arn=booking_dlq["QueueArn"])
        _assert_queue(booking_dlq, specs["booking_requests_dlq"], dlq_arn=None)


def _assert_queue(attributes: dict[str, str], spec: QueueSpec, dlq_arn: str | None) -> None:
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert attributes["MessageRetentionPeriod"] == str(spec.message_retention_seconds)
    if spec.visibility_timeout_seconds is not None:
        assert attributes["VisibilityTimeout"] == str(spec.visibility_timeout_seconds)
    if dlq_arn is None:
        assert "RedrivePolicy" not in attributes
    else:
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}


@pytest.mark.dynamodb_local
def test_provision_brings_drifted_queue_attributes_back(
    dynamodb_local_client: DynamoDBClient, sqs_client: SQSClient, names: ResourceNames
) -> None:
    urls = provision(dynamodb_local_client, sqs_client, names)
    url = urls[names.booking_queues["PE"]]
    sqs_client.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})

    provision(dynamodb_local_client, sqs_client, names)

    assert _queue_attributes(sqs_client, url)["VisibilityTimeout"] == "60"


@pytest.mark.dynamodb_local
def test_provision_refuses_a_table_with_another_key_schema(
    dynamodb_local_client: DynamoDBClient, sqs_client: SQSClient, names: ResourceNames
) -> None:
    dynamodb_local_client.create_table(
        TableName=names.table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ProvisioningError, match="another key schema"):
        provision(dynamodb_local_client, sqs_client, names)


@pytest.mark.dynamodb_local
def test_ttl_already_enabled_is_accepted(
    dynamodb_local_client: DynamoDBClient, names: ResourceNames
) -> None:
    spec = load_table_spec()
    dynamodb_local_client.create_table(**spec.create_table_kwargs(names.table))
    dynamodb_local_client.update_time_to_live(
        TableName=names.table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    resources.provision_table(dynamodb_local_client, names.table, spec)
    ttl = dynamodb_local_client.describe_time_to_live(TableName=names.table)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


@pytest.mark.dynamodb_local
def test_moto_leaves_dynamodb_local_requests_alone(
    dynamodb_local_client: DynamoDBClient, names: ResourceNames
) -> None:
    # provision() runs DynamoDB calls inside mock_aws: they must still reach DynamoDB Local.
    with mock_aws():
        provision(dynamodb_local_client, boto3.client("sqs", region_name="us-east-1"), names)
    table = dynamodb_local_client.describe_table(TableName=names.table)["Table"]
    assert table["TableStatus"] == "ACTIVE"
