"""`citas provision`: create the Terraform table and queues on the endpoints of the environment.

The clients come from the standard AWS SDK environment, read by boto3 itself
(`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`, `AWS_REGION`, credentials). Names are the
local defaults of `ResourceNames.local_defaults` (table `citas-local`, queues
`citas-local-*.fifo`). Running it again changes nothing and succeeds again.

Prints one JSON line per resource on stdout. Exits 0 on success, 2 with one line on stderr
(never a stack trace) when an endpoint is unreachable, the region or credentials are missing,
or an existing resource does not match Terraform.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

import attrs
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.aws.client import CLIENT_CONFIG as ADAPTER_CLIENT_CONFIG
from adapters.aws.resources import (
    ProvisioningError,
    ResourceNames,
    TerraformSpecError,
    provision,
)
from domain.countries import COUNTRY_CODE
from domain.text import matches

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

EXIT_OK: Final = 0
EXIT_FAILED: Final = 2
DEFAULT_COUNTRIES: Final = ("PE", "CL")
# Provisioning talks to emulators on this machine: fail within seconds when one is down
# instead of waiting through botocore's default minute of retries.
# Creating a table can take longer to answer than an item read: only the read timeout differs.
CLIENT_CONFIG: Final = ADAPTER_CLIENT_CONFIG.merge(Config(read_timeout=30))
_AWS_HOST_SUFFIXES: Final = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


class ProvisionFailed(Exception):
    """A one-line reason why provisioning could not finish."""


def _countries(value: str) -> tuple[str, ...]:
    codes = tuple(part.strip().upper() for part in value.split(",") if part.strip())
    if not codes or not all(matches(COUNTRY_CODE, code) for code in codes):
        raise argparse.ArgumentTypeError(f"expected ISO 3166 alpha-2 codes like PE,CL: {value!r}")
    if len(set(codes)) != len(codes):
        raise argparse.ArgumentTypeError(f"a country is named twice: {value!r}")
    return codes


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `citas provision`."""
    parser = argparse.ArgumentParser(
        prog="citas provision",
        description="Create the DynamoDB table and SQS queues of infra/terraform, idempotently.",
    )
    parser.add_argument(
        "--countries",
        type=_countries,
        default=DEFAULT_COUNTRIES,
        help="countries that get a booking-request queue, comma-separated (default: PE,CL)",
    )
    parser.add_argument(
        "--table", default=None, help="table name (default: the local default, citas-local)"
    )
    parser.add_argument(
        "--allow-aws",
        action="store_true",
        help="allow AWS's own endpoints (by default only local emulators are provisioned)",
    )
    return parser


def _is_aws_endpoint(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host.endswith(_AWS_HOST_SUFFIXES)


def _clients() -> tuple[DynamoDBClient, SQSClient]:
    try:
        return (
            boto3.client("dynamodb", config=CLIENT_CONFIG),
            boto3.client("sqs", config=CLIENT_CONFIG),
        )
    except BotoCoreError as error:  # e.g. NoRegionError, ProfileNotFound
        raise ProvisionFailed(f"{error} (set AWS_REGION, e.g. us-east-1)") from error
    except ValueError as error:  # a malformed endpoint URL
        raise ProvisionFailed(f"bad endpoint: {error}") from error


def run(
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    names: ResourceNames,
    *,
    allow_aws: bool = False,
) -> list[dict[str, str]]:
    """Provision `names` with these clients; return one description per resource."""
    endpoints = {"dynamodb": dynamodb.meta.endpoint_url, "sqs": sqs.meta.endpoint_url}
    on_aws = [service for service, url in endpoints.items() if _is_aws_endpoint(url)]
    if on_aws and not allow_aws:
        # The usual cause is a shell without the emulator variables; Terraform owns AWS.
        variables = " and ".join(f"AWS_ENDPOINT_URL_{service.upper()}" for service in on_aws)
        raise ProvisionFailed(
            f"{variables} not set: refusing to create resources on AWS itself"
            " (deploy with infra/terraform, or pass --allow-aws)"
        )
    try:
        urls = provision(dynamodb, sqs, names)
        table = dynamodb.describe_table(TableName=names.table)["Table"]
    except (BotoCoreError, ClientError) as error:
        raise ProvisionFailed(_describe(error, endpoints)) from error
    except (ProvisioningError, TerraformSpecError) as error:
        raise ProvisionFailed(str(error)) from error
    described = [
        {
            "resource": "dynamodb_table",
            "name": names.table,
            "arn": table.get("TableArn", ""),
            "endpoint": endpoints["dynamodb"],
        }
    ]
    described += [
        {"resource": "sqs_queue", "name": name, "url": urls[name]} for name in names.all_queues()
    ]
    return described


def _describe(error: BotoCoreError | ClientError, endpoints: dict[str, str]) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        service = error.operation_name
        return f"{service} failed: {info.get('Code', '?')}: {info.get('Message', '')}".strip()
    text = str(error)
    if "credentials" in text.lower():
        return f"{text} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; any value works locally)"
    if "connect" in text.lower():
        where = ", ".join(f"{service} {url}" for service, url in endpoints.items())
        return f"{text} (is the emulator running? endpoints: {where})"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run `citas provision` with `argv`; returns the exit status."""
    args = build_parser().parse_args(argv)
    names = ResourceNames.local_defaults(args.countries)
    if args.table is not None:
        names = attrs.evolve(names, table=args.table)
    try:
        dynamodb, sqs = _clients()
        described = run(dynamodb, sqs, names, allow_aws=args.allow_aws)
    except ProvisionFailed as error:
        print(f"citas provision: {error}", file=sys.stderr)
        return EXIT_FAILED
    for line in described:
        print(json.dumps(line, separators=(", ", ": ")), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
