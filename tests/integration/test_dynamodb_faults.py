"""Throttling, outages and timeouts become `TemporarilyUnavailable`, with nothing half-written.

Faults are injected with botocore event hooks on a real DynamoDB Local client: `before-call`
raises what botocore would raise once its own retries are spent; `before-send` answers with an
HTTP error so that botocore's retry loop runs for real first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from adapters.aws.client import TRANSACTION_RETRY
from adapters.aws.dynamodb import translate_errors
from domain.appointment import Status
from domain.commands import CancelAppointment, ChangeStatus, RescheduleAppointment
from domain.errors import SlotUnavailable, TemporarilyUnavailable
from tests.integration.aws_world import (
    THU,
    WED,
    Repositories,
    World,
    all_items,
    at,
    booking,
    fresh_table,
    local_client,
)
from tests.support.dynamodb_local import DynamoDBLocal

pytestmark = pytest.mark.dynamodb_local


def _client_error(code: str, status: int, operation: str = "TransactWriteItems") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def _conflict() -> ClientError:
    error = _client_error("TransactionCanceledException", 400)
    error.response["CancellationReasons"] = [  # type: ignore[typeddict-unknown-key]
        {"Code": "None"},
        {"Code": "TransactionConflict", "Message": "injected conflict"},
    ]
    return error


FAULTS: dict[str, Callable[[], Exception]] = {
    "throttling": lambda: _client_error("ThrottlingException", 400),
    "provisioned-throughput": lambda: _client_error("ProvisionedThroughputExceededException", 400),
    "request-limit": lambda: _client_error("RequestLimitExceeded", 400),
    "service-unavailable": lambda: _client_error("ServiceUnavailable", 503),
    "internal-server-error": lambda: _client_error("InternalServerError", 500),
    "transaction-conflict": lambda: _client_error("TransactionConflictException", 400),
    "cancelled-by-conflict": _conflict,
    "read-timeout": lambda: ReadTimeoutError(endpoint_url="http://dynamodb.invalid"),
    "connect-timeout": lambda: ConnectTimeoutError(endpoint_url="http://dynamodb.invalid"),
    "no-endpoint": lambda: EndpointConnectionError(endpoint_url="http://dynamodb.invalid"),
}


class Faults:
    """Raises the planned fault for an operation, counting each try."""

    def __init__(self) -> None:
        self.plan: dict[str, Callable[[], Exception]] = {}
        self.tries = 0

    def __call__(self, model: Any, **_: Any) -> None:
        fault = self.plan.get(model.name)
        if fault is not None:
            self.tries += 1
            raise fault()


@pytest.fixture
def faulty(dynamodb_local: DynamoDBLocal) -> Iterator[tuple[World, Faults]]:
    client = local_client(dynamodb_local.endpoint_url)
    table = fresh_table(client)
    world = World(Repositories.dynamodb(table, client))
    faults = Faults()
    client.meta.events.register("before-call.dynamodb.*", faults)
    yield world, faults
    client.delete_table(TableName=table)


def _snapshot(world: World) -> dict[str, Any]:
    """Every item of the table but the doctors, by key: what a use case may have written."""
    assert world.repos.client is not None
    return {
        f"{i['pk']}|{i['sk']}": i
        for i in all_items(world.repos.client, world.repos.table)
        if not str(i["pk"]).startswith("demo#DOCTOR#")
    }


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_failed_booking_writes_nothing(faulty: tuple[World, Faults], fault: str) -> None:
    world, faults = faulty
    faults.plan["TransactWriteItems"] = FAULTS[fault]
    with pytest.raises(TemporarilyUnavailable) as caught:
        world.clinic.book(booking(at(WED, "10:00"), minutes=60), idempotency_key="k-fault")
    assert isinstance(caught.value.__cause__, Exception)
    assert caught.value.retry_after_seconds >= 1
    # Nothing: no appointment, no cell, no key, no outbox event.
    assert _snapshot(world) == {}
    # A pure conflict is retried in the adapter before answering; anything else is not.
    assert faults.tries == (TRANSACTION_RETRY.attempts if fault == "cancelled-by-conflict" else 1)
    faults.plan.clear()
    booked = world.clinic.book(booking(at(WED, "10:00"), minutes=60), idempotency_key="k-fault")
    assert world.clinic.get(booked.appointment_id).version == 1


@pytest.mark.parametrize("fault", ["throttling", "service-unavailable", "read-timeout"])
@pytest.mark.parametrize("change", ["reschedule", "confirm", "cancel"])
def test_a_failed_change_leaves_the_appointment_as_it_was(
    faulty: tuple[World, Faults], fault: str, change: str
) -> None:
    world, faults = faulty
    booked = world.clinic.book(booking(at(WED, "10:00")))
    before = _snapshot(world)
    faults.plan["TransactWriteItems"] = FAULTS[fault]
    aid = booked.appointment_id
    run: dict[str, Callable[[], object]] = {
        "reschedule": lambda: world.clinic.reschedule(RescheduleAppointment(aid, at(THU, "10:00"))),
        "confirm": lambda: world.clinic.change_status(ChangeStatus(aid, Status.CONFIRMED)),
        "cancel": lambda: world.clinic.cancel(CancelAppointment(aid)),
    }
    with pytest.raises(TemporarilyUnavailable):
        run[change]()
    assert _snapshot(world) == before
    faults.plan.clear()
    run[change]()
    assert world.clinic.get(aid).version == 2


@pytest.mark.parametrize("operation", ["GetItem", "Query"])
def test_a_failed_read_is_temporarily_unavailable(
    faulty: tuple[World, Faults], operation: str
) -> None:
    world, faults = faulty
    faults.plan[operation] = FAULTS["throttling"]
    with pytest.raises(TemporarilyUnavailable):
        if operation == "GetItem":
            # A cold booking's first call: the doctor's schedule.
            world.clinic.book(booking(at(WED, "10:00")))
        else:
            world.clinic.availability("rosa", WED)
    assert _snapshot(world) == {}


def test_failed_reminders_and_outbox_calls_are_temporarily_unavailable(
    faulty: tuple[World, Faults],
) -> None:
    world, faults = faulty
    world.clinic.book(booking(at(THU, "10:00")))
    before = _snapshot(world)
    world.clock.set(at(WED, "10:05"))
    faults.plan["TransactWriteItems"] = FAULTS["service-unavailable"]
    with pytest.raises(TemporarilyUnavailable):
        world.clinic.run_cadence()
    faults.plan["BatchWriteItem"] = FAULTS["throttling"]
    with pytest.raises(TemporarilyUnavailable):
        world.repos.outbox.remove([e.event_id for e in world.repos.outbox.pending(10)])
    assert _snapshot(world) == before


def test_a_refused_transaction_writes_nothing_either(faulty: tuple[World, Faults]) -> None:
    world, _ = faulty
    world.clinic.book(booking(at(WED, "10:00")))
    before = _snapshot(world)
    # The doctor's guard refuses (10:00 is taken): the key, the appointment, the patient's
    # guard and the event in the same transaction are not written.
    with pytest.raises(SlotUnavailable):
        world.clinic.book(booking(at(WED, "09:00"), who=2, minutes=90), idempotency_key="k-2")
    assert _snapshot(world) == before


def test_other_client_errors_are_not_disguised(faulty: tuple[World, Faults]) -> None:
    world, faults = faulty
    faults.plan["TransactWriteItems"] = lambda: _client_error("ValidationException", 400)
    with pytest.raises(ClientError):
        world.clinic.book(booking(at(WED, "10:00")))
    faults.plan["TransactWriteItems"] = lambda: _client_error("AccessDeniedException", 400)
    with pytest.raises(ClientError):
        world.clinic.book(booking(at(WED, "10:00")))


class _Raw:
    """The body of a canned HTTP answer, as botocore reads it."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def test_botocore_retries_throttling_then_the_adapter_answers_503(
    dynamodb_local: DynamoDBLocal,
) -> None:
    # Legacy mode backs off from 50 ms: three real tries in well under a second.
    client = local_client(
        dynamodb_local.endpoint_url, retries={"mode": "legacy", "total_max_attempts": 3}
    )
    table = fresh_table(client)
    world = World(Repositories.dynamodb(table, client))
    sent: list[str] = []

    def throttle(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.headers["X-Amz-Target"].decode())
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput.",
            }
        ).encode()
        return AWSResponse(
            request.url, 400, {"content-type": "application/x-amz-json-1.0"}, _Raw(body)
        )  # type: ignore[arg-type]

    client.meta.events.register("before-send.dynamodb.TransactWriteItems", throttle)
    with pytest.raises(TemporarilyUnavailable):
        world.clinic.book(booking(at(WED, "10:00")))
    assert sent == ["DynamoDB_20120810.TransactWriteItems"] * 3
    world.repos.client = client
    world.repos.table = table
    assert _snapshot(world) == {}
    client.delete_table(TableName=table)


def test_translate_errors_passes_domain_errors_through() -> None:
    with pytest.raises(SlotUnavailable), translate_errors("dynamodb"):
        raise SlotUnavailable("taken")
