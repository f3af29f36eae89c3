"""The outbox relay Lambda on DynamoDB Local's own stream records, publishing to moto's SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.aws.dynamodb import outbox_pk
from domain.commands import CancelAppointment
from domain.errors import TemporarilyUnavailable
from domain.events import Event
from ports.messaging import EventPublisher
from ports.repositories import EventOutbox
from tests.integration.aws_world import THU, WED, at, booking, items_by_prefix
from tests.integration.lambda_stack import (
    FakeContext,
    LambdaFunction,
    Stack,
    aws_stack,
    envelope_bodies,
    log_records,
    outbox_inserts,
    peek,
    service_logs,
    stream_event,
)
from tests.support.dynamodb_local import DynamoDBLocal

relay = LambdaFunction("outbox_relay")


@pytest.fixture
def stack(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with aws_stack(dynamodb_local.endpoint_url, monkeypatch) as stack:
        yield stack


def run(records: list[dict[str, Any]]) -> dict[str, Any]:
    response: dict[str, Any] = relay.handler(stream_event(records), FakeContext())
    return response


def sequence_numbers(records: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["SequenceNumber"] for r in records]


def failed(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def outbox_items(stack: Stack) -> set[str]:
    return set(items_by_prefix(stack.dynamodb, stack.table, lambda pk: pk.startswith("OUTBOX#")))


class FlakyPublisher:
    """The real publisher, except that the listed events fail as if SQS were unreachable."""

    def __init__(self, real: EventPublisher, failing: set[str]) -> None:
        self.real = real
        self.failing = failing
        self.attempts: list[str] = []

    def publish(self, event: Event) -> None:
        self.attempts.append(event.event_id)
        if event.event_id in self.failing:
            raise TemporarilyUnavailable("sqs did not answer", service="sqs")
        self.real.publish(event)


def flaky_publisher(stack: Stack, failing: set[str]) -> FlakyPublisher:
    flaky = FlakyPublisher(stack.app.publisher, failing)
    stack.rebuild({EventPublisher: flaky})
    return flaky


def test_a_booking_reaches_the_events_queue_once_and_leaves_the_outbox(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(WED, "10:00")))
    records = stack.stream.read()
    # Unfiltered on purpose: the doctors, the appointment and its time cells stream by too,
    # and the relay must pass over them as if the event filter were missing.
    assert len(outbox_inserts(records)) == 1 < len(records)

    with service_logs(relay.logger) as logs:
        assert run(records) == {"batchItemFailures": []}

    (message,) = peek(stack.sqs, stack.events_url)
    envelope = json.loads(message["Body"])
    assert envelope["type"] == "AppointmentRequested"
    assert envelope["appointment_id"] == appointment.appointment_id
    assert message["Attributes"]["MessageGroupId"] == appointment.appointment_id
    assert message["Attributes"]["MessageDeduplicationId"] == envelope["event_id"]
    assert outbox_items(stack) == set()
    published = [r for r in log_records(logs) if r["message"] == "event published"]
    assert [r["event_id"] for r in published] == [envelope["event_id"]]
    # The relay's own delete streams by as a REMOVE, which it ignores.
    removes = stack.stream.read()
    assert [r["eventName"] for r in removes] == ["REMOVE"]
    assert run(removes) == {"batchItemFailures": []}
    assert len(peek(stack.sqs, stack.events_url)) == 1


def test_a_replayed_record_whose_item_is_gone_publishes_harmlessly(stack: Stack) -> None:
    stack.clinic.book(booking(at(WED, "10:00")))
    records = outbox_inserts(stack.stream.read())
    assert run(records) == {"batchItemFailures": []}
    assert outbox_items(stack) == set()

    assert run(records) == {"batchItemFailures": []}
    assert run(records) == {"batchItemFailures": []}
    assert len(peek(stack.sqs, stack.events_url)) == 1  # SQS dropped the resends by event id


def test_a_crash_between_the_commit_and_the_send_loses_nothing(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(WED, "10:00")))
    records = outbox_inserts(stack.stream.read())
    (event_id,) = [
        json.loads(r["dynamodb"]["NewImage"]["envelope"]["S"])["event_id"] for r in records
    ]
    real = stack.app.publisher
    flaky_publisher(stack, {event_id})

    first = run(records)
    assert failed(first) == sequence_numbers(records)
    assert peek(stack.sqs, stack.events_url) == []
    assert outbox_items(stack) == {outbox_pk(event_id)}  # committed, so still there to retry

    stack.rebuild({EventPublisher: real})  # SQS is back
    assert run(records) == {"batchItemFailures": []}  # Lambda retries the same records
    (message,) = peek(stack.sqs, stack.events_url)
    assert json.loads(message["Body"])["appointment_id"] == appointment.appointment_id
    assert outbox_items(stack) == set()


def test_a_crash_between_the_send_and_the_delete_publishes_once(stack: Stack) -> None:
    stack.clinic.book(booking(at(WED, "10:00")))
    records = outbox_inserts(stack.stream.read())
    outbox = stack.app.outbox

    class FailingDelete:
        def pending(self, limit: int) -> Any:
            return outbox.pending(limit)

        def remove(self, event_ids: Any) -> None:
            raise TemporarilyUnavailable("dynamodb is busy", service="dynamodb")

    stack.rebuild({EventOutbox: FailingDelete()})
    assert failed(run(records)) == sequence_numbers(records)
    assert len(outbox_items(stack)) == 1

    stack.rebuild({EventOutbox: outbox})
    assert run(records) == {"batchItemFailures": []}
    assert len(peek(stack.sqs, stack.events_url)) == 1
    assert outbox_items(stack) == set()


def test_the_first_failure_stops_the_batch_so_no_event_overtakes_it(stack: Stack) -> None:
    first = stack.clinic.book(booking(at(WED, "10:00"), who=1))
    stack.clinic.cancel(CancelAppointment(first.appointment_id))
    other = stack.clinic.book(booking(at(THU, "11:00"), who=2, doctor="ana"))
    records = stack.stream.read()
    inserts = outbox_inserts(records)
    events = [json.loads(r["dynamodb"]["NewImage"]["envelope"]["S"]) for r in inserts]
    assert [e["type"] for e in events] == [
        "AppointmentRequested",
        "AppointmentCancelled",
        "AppointmentRequested",
    ]
    flaky = flaky_publisher(stack, {events[0]["event_id"]})

    with service_logs(relay.logger) as logs:
        response = run(records)

    # The failed record and everything after it come back, in stream order; nothing after
    # it was even tried, so the cancellation cannot reach the queue before the booking.
    position = records.index(inserts[0])
    assert failed(response) == sequence_numbers(records[position:])
    assert flaky.attempts == [events[0]["event_id"]]
    assert peek(stack.sqs, stack.events_url) == []
    lines = log_records(logs)
    failure = next(r for r in lines if r["message"].startswith("record failed"))
    assert (failure["error_type"], failure["error_code"]) == (
        "TemporarilyUnavailable",
        "temporarily_unavailable",
    )
    assert failure["event_id"] == events[0]["event_id"]
    assert lines[-1]["failed"] == len(records) - position

    flaky.failing.clear()
    assert run(records[position:]) == {"batchItemFailures": []}
    bodies = envelope_bodies(peek(stack.sqs, stack.events_url))
    by_appointment = {
        key: [b["type"] for b in bodies if b["appointment_id"] == key]
        for key in (first.appointment_id, other.appointment_id)
    }
    assert by_appointment == {
        first.appointment_id: ["AppointmentRequested", "AppointmentCancelled"],
        other.appointment_id: ["AppointmentRequested"],
    }
    assert outbox_items(stack) == set()


def test_a_rejected_booking_request_is_grouped_by_its_request(stack: Stack) -> None:
    request = stack.clinic.request_booking(booking(at(WED, "10:00")))
    stack.clock.set(at(WED, "11:00"))  # too late now: the worker will reject it
    rejected = stack.clinic.process_booking_request(request.request_id)
    assert str(rejected.status) == "rejected"
    assert run(outbox_inserts(stack.stream.read())) == {"batchItemFailures": []}
    (message,) = peek(stack.sqs, stack.events_url)
    assert json.loads(message["Body"])["type"] == "BookingRequestRejected"
    assert message["Attributes"]["MessageGroupId"] == request.request_id


def test_a_malformed_outbox_item_fails_and_non_outbox_records_pass(stack: Stack) -> None:
    stack.stream.read()  # the doctors
    stack.dynamodb.put_item(
        TableName=stack.table,
        Item={
            "pk": {"S": outbox_pk("broken")},
            "sk": {"S": "EVENT"},
            "outbox": {"N": "1"},
            "envelope": {"S": "{not json"},
        },
    )
    stack.dynamodb.put_item(
        TableName=stack.table, Item={"pk": {"S": "SOMETHING#else"}, "sk": {"S": "EVENT"}}
    )
    records = stack.stream.read()
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == [
        "OUTBOX#broken",
        "SOMETHING#else",
    ]
    # A bug, not a hiccup: the stream retries it until the mapping's retry limit sends it to
    # the on-failure destination.
    assert failed(run(records)) == sequence_numbers(records)
    assert failed(run(records[1:])) == []
