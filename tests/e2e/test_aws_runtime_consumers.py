"""The aws runtime's consumers on moto's SQS: what `citas serve --backend aws` does per message.

Each test drives one receive and its batch as a consumer thread does, with a scripted clinic,
and checks what is deleted, what comes again and what ends in the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from moto import mock_aws

from adapters.aws.resources import ResourceNames, provision
from adapters.clinics import StaticClinicDirectory
from domain.clinics import DEMO_CLINIC
from domain.errors import NotFound, TemporarilyUnavailable
from domain.events import AppointmentCancelled, Event
from entrypoints.bootstrap import App
from entrypoints.config import Settings
from entrypoints.local import aws_runtime
from entrypoints.local.aws_runtime import AwsRuntime


class FakeClinic:
    """Books each request as scripted: a status, or an exception to raise."""

    def __init__(self, script: Mapping[str, Any]) -> None:
        self.script = dict(script)
        self.calls: list[str] = []

    def handle_booking_request(
        self, request_id: str, queued: Any = None, *, country: str | None = None
    ) -> Any:
        self.calls.append(request_id)
        outcome = self.script[request_id]
        if isinstance(outcome, Exception):
            raise outcome
        request = SimpleNamespace(status=outcome, error=None, country="PE", appointment_id=None)
        return SimpleNamespace(request=request, processed_now=True)

    def refill_after(self, event: Any) -> list[Any]:
        """No waitlist here: nothing to offer."""
        return []

    def booking_request(self, request_id: str) -> Any:
        raise AssertionError("the aws runtime never requeues by hand")


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, dict[str, str]]]:
    """moto's SQS with the Terraform queues, and their URLs by name."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "dummy")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield sqs, provision(dynamodb, sqs, ResourceNames.local_defaults())


def _runtime(sqs: Any, urls: dict[str, str], clinic: Any, messenger: Any = None) -> AwsRuntime:
    names = ResourceNames.local_defaults()
    settings = Settings(
        backend="aws",
        events_queue_url=urls[names.events_queue],
        booking_queue_urls={c: urls[n] for c, n in names.booking_queues.items()},
    )
    app = App(
        settings=settings,
        clinics=StaticClinicDirectory([(DEMO_CLINIC, "local-demo")]),
        services=lambda clinic_id: clinic,
        messenger=SimpleNamespace(handle=messenger or (lambda event: True)),
        # Not the consumers' business: the patients' pages and replies have their own tests.
        pages=SimpleNamespace(),
        replies=SimpleNamespace(),
        links=SimpleNamespace(),
        outbox=SimpleNamespace(pending=lambda limit: [], remove=lambda ids: None),
        publisher=SimpleNamespace(publish=lambda event: None),
        request_queue=SimpleNamespace(),
        clock=SimpleNamespace(),
    )
    return AwsRuntime(app, sqs)


def _send(sqs: Any, url: str, body: str, group: str) -> None:
    dedup = hashlib.sha256(body.encode()).hexdigest()
    sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup
    )


def _poll(runtime: AwsRuntime, sqs: Any, consumer: str) -> int:
    """One receive and its batch, as the consumer thread does; returns how many came."""
    (found,) = [c for c in runtime.consumers if c.name == consumer]
    answer = sqs.receive_message(
        QueueUrl=found.queue_url,
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["MessageGroupId", "ApproximateReceiveCount"],
    )
    messages = answer.get("Messages", [])
    runtime.handle_batch(found, messages)
    return len(messages)


def _count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_a_booked_request_is_deleted_from_its_queue(queues: Any) -> None:
    sqs, urls = queues
    url = urls["citas-local-booking-requests-pe.fifo"]
    clinic = FakeClinic({"req-1": "booked"})
    runtime = _runtime(sqs, urls, clinic)
    _send(sqs, url, json.dumps({"clinic_id": "demo", "request_id": "req-1"}), "dra-rosa")
    assert _poll(runtime, sqs, "booking-PE") == 1
    assert clinic.calls == ["req-1"]
    assert _count(sqs, url) == 0


@pytest.mark.parametrize(
    "body", ["not json", '{"id": 1}', '{"request_id": 7}', '{"request_id": "gone"}']
)
def test_a_poison_booking_message_ends_in_the_dead_letter_queue(
    queues: Any, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    sqs, urls = queues
    url = urls["citas-local-booking-requests-pe.fifo"]
    dlq = urls["citas-local-booking-requests-pe-dlq.fifo"]
    runtime = _runtime(sqs, urls, FakeClinic({"gone": NotFound("no such request")}))
    _send(sqs, url, body, "dra-rosa")
    # maxReceiveCount is 5 (Terraform): the poison comes back at once until SQS moves it.
    for _ in range(5):
        assert _poll(runtime, sqs, "booking-PE") == 1
    assert _poll(runtime, sqs, "booking-PE") == 0
    assert _count(sqs, url) == 0
    assert _count(sqs, dlq) == 1
    poison = [r for r in caplog.records if r.getMessage().startswith("poison message")]
    assert len(poison) == 5
    assert all(body not in json.dumps(r.__dict__.get("fields", {})) for r in poison)


def test_a_busy_backend_leaves_the_request_for_a_later_delivery(queues: Any) -> None:
    sqs, urls = queues
    url = urls["citas-local-booking-requests-pe.fifo"]
    clinic = FakeClinic({"req-1": TemporarilyUnavailable("throttled", service="dynamodb")})
    runtime = _runtime(sqs, urls, clinic)
    _send(sqs, url, json.dumps({"clinic_id": "demo", "request_id": "req-1"}), "dra-rosa")
    assert _poll(runtime, sqs, "booking-PE") == 1
    assert _poll(runtime, sqs, "booking-PE") == 0  # not at once: it waits a moment
    clinic.script["req-1"] = "booked"
    time.sleep(aws_runtime.RETRY_LATER_SECONDS + 0.2)
    assert _poll(runtime, sqs, "booking-PE") == 1
    assert clinic.calls == ["req-1", "req-1"]
    assert _count(sqs, url) == 0


def test_after_a_failure_the_rest_of_its_group_waits_and_other_groups_go_on(queues: Any) -> None:
    sqs, urls = queues
    url = urls["citas-local-booking-requests-pe.fifo"]
    clinic = FakeClinic(
        {
            "rosa-1": TemporarilyUnavailable("throttled", service="dynamodb"),
            "rosa-2": "booked",
            "juan-1": "booked",
        }
    )
    runtime = _runtime(sqs, urls, clinic)
    for request_id in ("rosa-1", "rosa-2", "juan-1"):
        _send(
            sqs,
            url,
            json.dumps({"clinic_id": "demo", "request_id": request_id}),
            request_id.split("-")[0],
        )
    assert _poll(runtime, sqs, "booking-PE") == 3
    # rosa-2 must not overtake rosa-1 (FIFO per doctor); juan's queue of requests goes on.
    assert clinic.calls == ["rosa-1", "juan-1"]
    clinic.script["rosa-1"] = "booked"
    time.sleep(aws_runtime.RETRY_LATER_SECONDS + 0.2)
    while _poll(runtime, sqs, "booking-PE"):
        pass
    assert clinic.calls == ["rosa-1", "juan-1", "rosa-1", "rosa-2"]
    assert _count(sqs, url) == 0


def test_the_events_consumer_hands_each_event_to_the_messenger_and_deletes_it(
    queues: Any,
) -> None:
    sqs, urls = queues
    url = urls["citas-local-events.fifo"]
    seen: list[Event] = []
    runtime = _runtime(sqs, urls, FakeClinic({}), messenger=lambda e: seen.append(e) or True)
    event = AppointmentCancelled(
        event_id="evt-1",
        clinic_id="demo",
        appointment_id="appt-1",
        version=2,
        occurred_at=datetime(2026, 12, 1, 13, 0, tzinfo=ZoneInfo("UTC")),
        data={"start": "2026-12-02T15:00:00+00:00"},
    )
    _send(sqs, url, json.dumps(event.to_envelope()), "appt-1")
    _send(sqs, url, '{"type": "Nonsense"}', "appt-2")
    assert _poll(runtime, sqs, "events") == 2
    assert seen == [event]
    assert _count(sqs, url) == 1  # the poison one, on its way to the DLQ
