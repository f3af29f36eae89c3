"""The SQS FIFO adapters on moto, and the aws composition root end to end on moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from adapters.aws import bootstrap as aws_bootstrap
from adapters.aws.resources import ResourceNames, provision
from adapters.aws.sqs import SQSBookingRequestQueue, SQSEventPublisher
from adapters.memory.store import InMemoryBookingRequestQueue
from domain.booking_request import BookingRequest, RequestStatus
from domain.errors import TemporarilyUnavailable
from domain.events import AppointmentRequested, event_from_envelope
from ports.messaging import BookingRequestQueue, EventPublisher
from ports.repositories import ClinicRepositories, EventOutbox
from tests.integration.aws_world import NOW, REGION, WED, Repositories, World, at, booking

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, SQSClient, dict[str, str]]]:
    """moto's DynamoDB and SQS with the Terraform table and queues provisioned."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        urls = provision(dynamodb, sqs, ResourceNames.local_defaults())
        yield dynamodb, sqs, urls


def _receive(sqs: SQSClient, url: str) -> list[dict[str, Any]]:
    answer = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )
    return list(answer.get("Messages", []))


def _event() -> AppointmentRequested:
    return AppointmentRequested(
        event_id="0190a000-0000-7000-8000-000000000001",
        clinic_id="demo",
        appointment_id="0190a000-0000-7000-8000-0000000000aa",
        version=1,
        occurred_at=NOW.astimezone(UTC),
        data={"status": "requested"},
    )


def test_publisher_sends_the_envelope_grouped_by_appointment(aws: Any) -> None:
    _, sqs, urls = aws
    url = urls[ResourceNames.local_defaults().events_queue]
    publisher = SQSEventPublisher(url, sqs)
    event = _event()
    publisher.publish(event)
    publisher.publish(event)  # a relay's resend: dropped by FIFO deduplication
    (message,) = _receive(sqs, url)
    assert json.loads(message["Body"]) == event.to_envelope()
    assert event_from_envelope(json.loads(message["Body"])) == event
    assert message["Attributes"]["MessageGroupId"] == event.appointment_id
    assert message["Attributes"]["MessageDeduplicationId"] == event.event_id


def _request(country: str = "PE") -> BookingRequest:
    return BookingRequest(
        clinic_id="demo",
        request_id="0190a000-0000-7000-8000-0000000000bb",
        country=country,
        command=booking(at(WED, "10:00")),
        created_at=NOW,
        updated_at=NOW,
    )


def test_booking_requests_go_to_their_countrys_queue_in_doctor_order(aws: Any) -> None:
    _, sqs, urls = aws
    names = ResourceNames.local_defaults()
    queue = SQSBookingRequestQueue({c: urls[n] for c, n in names.booking_queues.items()}, sqs)
    queue.enqueue(_request("PE"))
    (message,) = _receive(sqs, urls[names.booking_queues["PE"]])
    # The whole request: the worker stores it if its own store failed after the send.
    assert json.loads(message["Body"]) == {
        "clinic_id": "demo",
        "request_id": _request().request_id,
        "country": "PE",
        "created_at": NOW.isoformat(),
        "command": _request().command.to_dict(),
    }
    assert BookingRequest.from_message(json.loads(message["Body"])) == _request()
    assert message["Attributes"]["MessageGroupId"] == "demo#rosa"
    assert message["Attributes"]["MessageDeduplicationId"] == _request().request_id
    assert _receive(sqs, urls[names.booking_queues["CL"]]) == []
    with pytest.raises(LookupError):
        SQSBookingRequestQueue({}, sqs).enqueue(_request("PE"))


@pytest.mark.parametrize("code", ["ThrottlingException", "RequestThrottled", "ServiceUnavailable"])
def test_a_throttled_queue_is_temporarily_unavailable_and_nothing_is_stored(
    aws: Any, code: str
) -> None:
    dynamodb, sqs, urls = aws
    names = ResourceNames.local_defaults()

    def throttle(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {}},
            "SendMessage",
        )

    sqs.meta.events.register("before-call.sqs.SendMessage", throttle)
    world = World(Repositories.dynamodb(names.table, dynamodb))
    world.clinic.request_queue = SQSBookingRequestQueue(
        {c: urls[n] for c, n in names.booking_queues.items()}, sqs
    )
    with pytest.raises(TemporarilyUnavailable):
        world.clinic.request_booking(booking(at(WED, "10:00")))
    # Queued first: a request that could not be queued was never stored, nor pending.
    assert world.repos.outbox.pending(10) == []
    items = dynamodb.scan(TableName=names.table, ConsistentRead=True)["Items"]
    assert [i for i in items if i["pk"]["S"].startswith("demo#REQ#")] == []
    with pytest.raises(TemporarilyUnavailable):
        SQSEventPublisher(urls[names.events_queue], sqs).publish(_event())


def test_registering_builds_no_client_and_the_container_books(
    aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from entrypoints.bootstrap import ClinicServices, build_container
    from entrypoints.config import Settings

    _, _, urls = aws
    names = ResourceNames.local_defaults()
    built: list[str] = []
    real_dynamodb, real_sqs = (
        aws_bootstrap.default_dynamodb_client,
        aws_bootstrap.default_sqs_client,
    )

    def dynamodb() -> Any:
        built.append("dynamodb")
        return real_dynamodb()

    def sqs() -> Any:
        built.append("sqs")
        return real_sqs()

    monkeypatch.setattr(aws_bootstrap, "default_dynamodb_client", dynamodb)
    monkeypatch.setattr(aws_bootstrap, "default_sqs_client", sqs)
    settings = Settings(
        backend="aws",
        table_name=names.table,
        events_queue_url=urls[names.events_queue],
        booking_queue_urls={c: urls[n] for c, n in names.booking_queues.items()},
    )
    container = build_container(settings)
    assert built == []
    assert isinstance(container.resolve(EventPublisher), SQSEventPublisher)
    assert isinstance(container.resolve(BookingRequestQueue), SQSBookingRequestQueue)
    assert built == []

    app = container.resolve(ClinicServices)("demo")
    world = World(
        Repositories(app.appointments, app.doctors, app.requests, container.resolve(EventOutbox))
    )
    assert built == ["dynamodb"]  # one client, shared by every repository
    booked = world.clinic.book(booking(at(WED, "10:00")))
    repositories = container.resolve(ClinicRepositories)
    assert repositories.appointments("demo").get(booked.appointment_id) is not None
    request = app.request_booking(booking(at(WED, "11:00"), who=2))
    assert built == ["dynamodb", "sqs"]
    assert request.status is RequestStatus.PENDING
    assert not isinstance(app.request_queue, InMemoryBookingRequestQueue)


def test_without_an_events_queue_no_publisher_is_registered(aws: Any) -> None:
    import punq

    from entrypoints.config import Settings

    container = punq.Container()
    aws_bootstrap.register_aws_adapters(container, Settings(backend="aws"))
    with pytest.raises(punq.MissingDependencyError):
        container.resolve(EventPublisher)
    assert isinstance(container.resolve(EventOutbox), object)
