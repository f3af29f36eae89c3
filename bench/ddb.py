"""DynamoDB Local for the benchmarks: one server per family, fresh tables, counting clients.

bench/run.py ends every family with `end_family()`, which stops the server the family used:
the next family's first `server()` then starts a fresh one (and warms its JVM up), so no
family measures a server another one filled.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from bench.common import log

REGION = "us-east-1"
_server: Any = None
# The servers started since the last `end_family()`: what the family ran on.
_started: list[dict[str, Any]] = []
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def server() -> Any:
    """The family's DynamoDB Local (tests/support/dynamodb_local.py), started and warmed up
    on first use; `end_family()` stops it."""
    global _server
    if _server is None:
        from tests.support.dynamodb_local import DynamoDBLocal

        log("starting DynamoDB Local")
        _server = DynamoDBLocal().start()
        log(f"DynamoDB Local on {_server.endpoint_url} ({_server.startup_seconds:.1f} s)")
        warm_up_seconds = _warm_up(_server.endpoint_url)
        _started.append(
            {
                "startup_seconds": round(_server.startup_seconds, 2),
                "warm_up_seconds": round(warm_up_seconds, 2),
            }
        )
    return _server


def _warm_up(endpoint_url: str, bookings: int = 60) -> float:
    """Let the JVM compile its hot paths before anything is timed: book and cancel a while."""
    import datetime as dt

    from bench.common import FIRST_DAY, MORNING_HOURS, local_start, phone
    from domain.appointment import Patient
    from domain.commands import BookAppointment, CancelAppointment, RegisterDoctor

    began = time.perf_counter()
    admin = client(endpoint_url)
    table = fresh_table(admin, "citas-warmup")
    clinic, outbox = clinic_on(admin, table)
    clinic.register_doctor(RegisterDoctor("warm", "Dr. Warm", "PE", MORNING_HOURS, None, 30))
    for n in range(bookings):
        day = FIRST_DAY + dt.timedelta(days=n // 10)
        booked = clinic.book(
            BookAppointment("warm", Patient("P", phone(n)), local_start(day, n % 10))
        )
        clinic.get(booked.appointment_id)
        clinic.availability("warm", day)
        if n % 2:
            clinic.cancel(CancelAppointment(booked.appointment_id))
    outbox.pending(100)
    admin.delete_table(TableName=table)
    seconds = time.perf_counter() - began
    log(f"DynamoDB Local warmed up in {seconds:.1f} s")
    return seconds


def stop() -> None:
    """Stop the server, if one runs (waits for the JVM: its CPU time is then counted)."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def end_family(family: str) -> dict[str, Any] | None:
    """Stop the server `family` used; what it ran on, or None if it started none."""
    started = list(_started)
    _started.clear()
    stop()
    if not started:
        return None
    first = started[0]
    return {
        "kind": "DynamoDB Local",
        # Every server is stopped after the family that started it: each one is fresh.
        "fresh": True,
        "started_for": family,
        "startup_seconds": first["startup_seconds"],
        "warm_up_seconds": first["warm_up_seconds"],
        "servers_started": len(started),
        "stopped_after": True,
    }


def client(
    endpoint_url: str,
    pool: int = 10,
    session: Any = None,
    *,
    access_key_id: str = "dummy",
    region: str = REGION,
    **config: Any,
) -> Any:
    """A DynamoDB client with dummy credentials; `pool` connections for threads.

    DynamoDB Local keeps one database per access key id and region unless started with
    `-sharedDb`: an audit must use the same ones as the server it audits.
    """
    factory = session.client if session is not None else boto3.client
    return factory(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key="dummy",
        config=Config(
            **{"retries": {"mode": "standard", "max_attempts": 3}, "max_pool_connections": pool}
            | config
        ),
    )


def clinic_on(client: Any, table: str) -> tuple[Any, Any]:
    """A `Clinic` on the DynamoDB adapters over `client`, its clock at NOW; and the outbox.

    With the national holidays of the library, as `entrypoints.bootstrap` builds it: the
    rules judge a booking as in production. Each call is a new container: its cache of
    doctors' schedules starts empty (the first booking of a doctor reads the profile).
    """
    import datetime as dt

    from adapters.aws.dynamodb import (
        DynamoDBAppointmentRepository,
        DynamoDBBookingRequestRepository,
        DynamoDBDoctorRepository,
        DynamoDBEventOutbox,
    )
    from adapters.aws.dynamodb.waitlist import DynamoDBWaitlistRepository
    from adapters.holidays import LibraryHolidayCalendar
    from adapters.memory.store import InMemoryBookingRequestQueue
    from adapters.system import FixedClock, UuidV7Generator
    from bench.common import NOW
    from domain.countries import CountryCatalog
    from domain.use_cases import Clinic

    outbox = DynamoDBEventOutbox(table, client, retry_delay=0.001)
    clinic = Clinic(
        DynamoDBAppointmentRepository(table, client, clinic_id="demo"),
        DynamoDBDoctorRepository(table, client, clinic_id="demo"),
        DynamoDBBookingRequestRepository(table, client, clinic_id="demo"),
        InMemoryBookingRequestQueue(),
        FixedClock(NOW.astimezone(dt.UTC)),
        UuidV7Generator(),
        CountryCatalog(),
        clinic_id="demo",
        holidays=LibraryHolidayCalendar(),
        waitlist=DynamoDBWaitlistRepository(table, client, clinic_id="demo"),
    )
    return clinic, outbox


def fresh_table(ddb: Any, prefix: str = "citas-bench") -> str:
    """A new table of the Terraform shape (infra/terraform/dynamodb.tf)."""
    from adapters.aws.resources import load_table_spec, provision_table

    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    provision_table(ddb, name, load_table_spec())
    return name


@contextlib.contextmanager
def aws_environment(endpoint_url: str, table: str) -> Iterator[None]:
    """The standard AWS SDK variables pointing at DynamoDB Local, restored afterwards."""
    values = {
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "dummy",
        "AWS_SECRET_ACCESS_KEY": "dummy",
        "CITAS_TABLE_NAME": table,
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def to_attributes(item: dict[str, Any]) -> dict[str, Any]:
    """A plain item as DynamoDB attribute values (None values left out, as the adapter does)."""
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def scan_all(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the table, raw attribute values (a Scan: audits only, never the app)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class Calls:
    """botocore hooks on one client: API calls, their parameters and their answers."""

    def __init__(self, ddb: Any, *, consumed_capacity: bool = True) -> None:
        self.operations: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.consumed_capacity = consumed_capacity
        events = ddb.meta.events
        events.register("provide-client-params.dynamodb.*", self._params)
        events.register("before-call.dynamodb.*", self._count)
        events.register("after-call.dynamodb.*", self._answer)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.consumed_capacity and model.name not in {"DescribeTable", "DescribeTimeToLive"}:
            params.setdefault("ReturnConsumedCapacity", "INDEXES")
        self.requests.append((model.name, params))

    def _count(self, model: Any, **_: Any) -> None:
        # Once per API call: botocore's own retries are not counted again.
        self.operations[model.name] += 1

    def _answer(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.responses.append((model.name, parsed))

    def take(self) -> tuple[dict[str, int], list[tuple[str, dict[str, Any]]], list[Any]]:
        """Counts, requests and answers since the last take."""
        counted = dict(self.operations)
        requests, responses = self.requests, self.responses
        self.operations = Counter()
        self.requests, self.responses = [], []
        return counted, requests, responses
