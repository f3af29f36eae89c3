"""A country's booking worker Lambda on moto's FIFO queues, booking on DynamoDB Local."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from domain.booking_request import BookingRequest, RequestStatus
from domain.errors import TemporarilyUnavailable
from ports.repositories import BookingRequestRepository
from tests.integration.aws_world import THU, WED, at, booking, items_by_prefix
from tests.integration.lambda_stack import (
    LambdaFunction,
    QueueTrigger,
    Stack,
    aws_stack,
    log_records,
    peek,
    service_logs,
)
from tests.support.dynamodb_local import DynamoDBLocal

worker = LambdaFunction("booking_worker")
UNKNOWN = "0190a000-0000-7000-8000-00000000dead"
MAX_RECEIVE_COUNT = 5  # infra/terraform/variables.tf


@pytest.fixture
def stack(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with aws_stack(
        dynamodb_local.endpoint_url, monkeypatch, extra_env={"CITAS_WORKER_COUNTRY": "PE"}
    ) as stack:
        yield stack


@pytest.fixture
def trigger(stack: Stack) -> QueueTrigger:
    return QueueTrigger(stack.sqs, stack.booking_url("PE"), worker.handler)


def appointments(stack: Stack) -> dict[str, dict[str, Any]]:
    return items_by_prefix(stack.dynamodb, stack.table, lambda pk: pk.startswith("demo#APPT#"))


def send_raw(stack: Stack, body: str, group: str, dedup: str) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.booking_url("PE"),
        MessageBody=body,
        MessageGroupId=group,
        MessageDeduplicationId=dedup,
    )


def failed(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_a_queued_request_is_booked_once_even_when_delivered_again(
    stack: Stack, trigger: QueueTrigger
) -> None:
    request = stack.clinic.request_booking(booking(at(WED, "10:00")))
    messages = trigger.receive()
    assert [json.loads(m["Body"]) for m in messages] == [request.to_message()]

    with service_logs(worker.logger) as logs:
        assert trigger.deliver(messages) == {"batchItemFailures": []}
        # SQS may deliver a message twice (at least once): the same record again.
        assert trigger.deliver(messages) == {"batchItemFailures": []}

    stored = stack.clinic.booking_request(request.request_id)
    assert stored.status is RequestStatus.BOOKED
    assert list(appointments(stack)) == [f"demo#APPT#{stored.appointment_id}"]
    assert peek(stack.sqs, stack.booking_url("PE")) == []
    messages_logged = [r["message"] for r in log_records(logs)]
    assert messages_logged.count("request processed") == 1
    assert messages_logged.count("request already processed") == 1


def test_a_request_that_cannot_be_booked_is_rejected_not_retried(
    stack: Stack, trigger: QueueTrigger
) -> None:
    taken = stack.clinic.book(booking(at(WED, "10:00"), who=1))
    request = stack.clinic.request_booking(booking(at(WED, "10:00"), who=2))

    assert trigger.poll() == {"batchItemFailures": []}
    stored = stack.clinic.booking_request(request.request_id)
    assert stored.status is RequestStatus.REJECTED
    assert (stored.error or {})["code"] == "slot_unavailable"
    assert list(appointments(stack)) == [f"demo#APPT#{taken.appointment_id}"]


def test_a_failure_holds_back_only_its_doctors_later_requests(
    stack: Stack, trigger: QueueTrigger
) -> None:
    # The group the queue gives the clinic's doctor rosa (`<clinic>#<doctor>`).
    send_raw(stack, "{not json", group="demo#rosa", dedup="poison-1")
    for_ana = stack.clinic.request_booking(booking(at(WED, "10:00"), who=1, doctor="ana"))
    for_rosa = stack.clinic.request_booking(booking(at(WED, "11:00"), who=2, doctor="rosa"))
    messages = trigger.receive()
    assert [m["Attributes"]["MessageGroupId"] for m in messages] == [
        "demo#rosa",
        "demo#ana",
        "demo#rosa",
    ]

    response = trigger.deliver(messages)

    assert failed(response) == [messages[0]["MessageId"], messages[2]["MessageId"]]
    assert stack.clinic.booking_request(for_ana.request_id).status is RequestStatus.BOOKED
    # Not even tried: Rosa's requests stay in order behind the failed message.
    assert stack.clinic.booking_request(for_rosa.request_id).status is RequestStatus.PENDING


def test_a_busy_database_is_retried_on_the_next_delivery(
    stack: Stack, trigger: QueueTrigger
) -> None:
    request = stack.clinic.request_booking(booking(at(WED, "10:00")))
    real: BookingRequestRepository = stack.app.for_clinic("demo").requests

    class BusyOnce:
        def __init__(self) -> None:
            self.busy = True

        def add(self, request: BookingRequest) -> None:
            real.add(request)

        def get(self, request_id: str) -> BookingRequest | None:
            if self.busy:
                self.busy = False
                raise TemporarilyUnavailable("dynamodb is busy", service="dynamodb")
            return real.get(request_id)

        def save(self, request: BookingRequest) -> None:
            real.save(request)

    stack.rebuild({BookingRequestRepository: BusyOnce()})
    assert len(failed(trigger.poll() or {})) == 1
    assert trigger.poll() == {"batchItemFailures": []}
    assert real.get(request.request_id).status is RequestStatus.BOOKED  # type: ignore[union-attr]
    assert len(appointments(stack)) == 1


def test_a_poison_message_ends_in_the_dlq_while_healthy_ones_are_booked(
    stack: Stack, trigger: QueueTrigger
) -> None:
    send_raw(
        stack,
        json.dumps({"clinic_id": "demo", "request_id": UNKNOWN}),
        group="rosa",
        dedup="poison-2",
    )
    healthy = stack.clinic.request_booking(booking(at(THU, "10:00"), doctor="ana"))

    with service_logs(worker.logger) as logs:
        polls = trigger.drain()

    # One failing delivery per receive allowed; the next receive moves it to the DLQ.
    assert polls == MAX_RECEIVE_COUNT
    (dead,) = peek(stack.sqs, stack.booking_dlq_url("PE"))
    assert json.loads(dead["Body"]) == {"clinic_id": "demo", "request_id": UNKNOWN}
    assert dead["Attributes"]["MessageGroupId"] == "rosa"
    assert peek(stack.sqs, stack.booking_url("PE")) == []
    assert stack.clinic.booking_request(healthy.request_id).status is RequestStatus.BOOKED
    failures = [r for r in log_records(logs) if r["message"].startswith("record failed")]
    assert len(failures) == MAX_RECEIVE_COUNT
    assert {(r["error_type"], r["error_code"]) for r in failures} == {("NotFound", "not_found")}
    assert [r["receive_count"] for r in failures] == [str(n) for n in range(1, 6)]


@pytest.mark.parametrize("body", ["[]", "{}", '{"request_id": 7}', ""])
def test_a_body_without_a_request_id_is_poison(
    stack: Stack, trigger: QueueTrigger, body: str
) -> None:
    send_raw(stack, body or " ", group="rosa", dedup="poison-3")
    assert len(failed(trigger.poll() or {})) == 1


def test_a_worker_refuses_another_countrys_request(stack: Stack, trigger: QueueTrigger) -> None:
    chilean = stack.clinic.request_booking(booking(at(WED, "10:00"), doctor="matias"))
    # Misrouted onto Peru's queue, e.g. by a hand-made redrive.
    send_raw(
        stack,
        json.dumps({"clinic_id": "demo", "request_id": chilean.request_id}),
        group="matias",
        dedup="x",
    )

    with service_logs(worker.logger) as logs:
        assert len(failed(trigger.poll() or {})) == 1

    assert stack.clinic.booking_request(chilean.request_id).status is RequestStatus.PENDING
    (failure,) = [r for r in log_records(logs) if r["message"].startswith("record failed")]
    assert (failure["error_type"], failure["country"]) == ("PoisonMessage", "CL")


def test_a_request_queued_but_never_stored_is_stored_and_booked_by_the_worker(
    stack: Stack, trigger: QueueTrigger
) -> None:
    from adapters.aws.dynamodb import REQUEST_SK, request_pk

    request = stack.clinic.request_booking(booking(at(WED, "10:00")))
    # As if the PutItem after the SendMessage had failed: the message alone carries it.
    stack.dynamodb.delete_item(
        TableName=stack.table,
        Key={"pk": {"S": request_pk("demo", request.request_id)}, "sk": {"S": REQUEST_SK}},
    )
    messages = trigger.receive()

    assert trigger.deliver(messages) == {"batchItemFailures": []}
    assert trigger.deliver(messages) == {"batchItemFailures": []}  # delivered twice

    stored = stack.clinic.booking_request(request.request_id)
    assert stored.status is RequestStatus.BOOKED
    assert list(appointments(stack)) == [f"demo#APPT#{stored.appointment_id}"]
