"""The notifications Lambda on moto's events queue, texting patients through moto's SNS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from domain.commands import RescheduleAppointment
from domain.errors import TemporarilyUnavailable
from ports.messaging import Notifier, OutboundMessage
from tests.integration.aws_world import THU, WED, at, booking, patient
from tests.integration.lambda_stack import (
    FakeContext,
    LambdaFunction,
    QueueTrigger,
    Stack,
    aws_stack,
    log_records,
    peek,
    service_logs,
    stream_event,
)
from tests.support.dynamodb_local import DynamoDBLocal

notifications = LambdaFunction("notifications")
relay = LambdaFunction("outbox_relay")
MAX_RECEIVE_COUNT = 5  # infra/terraform/variables.tf


@pytest.fixture
def stack(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with aws_stack(dynamodb_local.endpoint_url, monkeypatch) as stack:
        yield stack


@pytest.fixture
def trigger(stack: Stack) -> QueueTrigger:
    return QueueTrigger(stack.sqs, stack.events_url, notifications.handler)


def relay_all(stack: Stack) -> None:
    """What the stream-triggered relay does after each commit."""
    response = relay.handler(stream_event(stack.stream.read()), FakeContext())
    assert response == {"batchItemFailures": []}


def failed(response: dict[str, Any] | None) -> list[str]:
    return [f["itemIdentifier"] for f in (response or {})["batchItemFailures"]]


class FlakyNotifier:
    """The real notifier, except that one phone is unreachable."""

    def __init__(self, real: Notifier, phone: str) -> None:
        self.real = real
        self.phone = phone

    def send(self, message: OutboundMessage) -> str | None:
        if message.phone == self.phone:
            raise TemporarilyUnavailable("sns is throttling", service="sns")
        return self.real.send(message)


def test_a_booking_texts_the_patient_in_spanish_in_the_clinics_time(
    stack: Stack, trigger: QueueTrigger
) -> None:
    stack.clinic.book(booking(at(WED, "10:00")))
    relay_all(stack)

    with service_logs(notifications.logger) as logs:
        assert trigger.poll() == {"batchItemFailures": []}

    ((phone, text),) = stack.sms()
    assert phone == patient(1).phone
    assert text.startswith(
        "Clínica Demo: Hola, reservaste una cita con Dra. Rosa Quispe el miércoles 2 de "
        "diciembre, 10:00 (hora de Lima). ¿Nos confirmas? Responde SI para confirmar o NO para "
        "cancelar, o entra aquí: http://127.0.0.1:8000/p/"
    )
    assert peek(stack.sqs, stack.events_url) == []
    logged = log_records(logs)
    for secret in (patient(1).phone, patient(1).phone[1:], patient(1).name, "Rosa"):
        assert all(secret not in json.dumps(r, ensure_ascii=False) for r in logged), secret
    handled = next(r for r in logged if r["message"] == "event handled")
    assert (handled["event_type"], handled["sent"]) == ("AppointmentRequested", True)


def test_a_redelivered_or_republished_event_texts_once(stack: Stack, trigger: QueueTrigger) -> None:
    stack.clinic.book(booking(at(WED, "10:00")))
    relay_all(stack)
    messages = trigger.receive()
    assert trigger.deliver(messages) == {"batchItemFailures": []}
    # The same SQS message again (at-least-once delivery)...
    assert trigger.deliver(messages) == {"batchItemFailures": []}
    # ...and the relay's resend after SQS's 5-minute deduplication window: a new message.
    stack.sqs.send_message(
        QueueUrl=stack.events_url,
        MessageBody=messages[0]["Body"],
        MessageGroupId=messages[0]["Attributes"]["MessageGroupId"],
        MessageDeduplicationId=messages[0]["Attributes"]["MessageDeduplicationId"] + "-later",
    )
    assert trigger.poll() == {"batchItemFailures": []}
    assert len(stack.sms()) == 1


def test_a_failure_holds_back_only_that_appointments_later_events(
    stack: Stack, trigger: QueueTrigger
) -> None:
    # Two messages of the first appointment that both still hold: its booking and, once its
    # 24-hour mark has passed, its at-risk reminder.
    first = stack.clinic.book(booking(at(THU, "10:00"), who=1))
    # A day and an hour ahead: no cadence step of its own is due at 10:05.
    second = stack.clinic.book(booking(at(THU, "11:00"), who=2, doctor="ana"))
    stack.clock.set(at(WED, "10:05"))
    assert [a.appointment_id for a in stack.clinic.run_cadence()] == [first.appointment_id]
    relay_all(stack)
    real = stack.app.messenger.notifier
    stack.rebuild({Notifier: FlakyNotifier(real, patient(1).phone)})
    messages = trigger.receive()
    groups = [m["Attributes"]["MessageGroupId"] for m in messages]
    assert groups == [first.appointment_id, second.appointment_id, first.appointment_id]

    response = trigger.deliver(messages)

    # The reminder waits behind its booking's message; the other patient is told.
    assert failed(response) == [messages[0]["MessageId"], messages[2]["MessageId"]]
    assert [phone for phone, _ in stack.sms()] == [patient(2).phone]

    stack.rebuild({Notifier: real})
    assert trigger.drain() == 1
    texts = [text for phone, text in stack.sms() if phone == patient(1).phone]
    assert len(texts) == 2
    assert "reservaste una cita" in texts[0]  # in order: the booking, then its day-before
    assert texts[1].startswith("Clínica Demo: Tu cita con Dra. Rosa Quispe es el jueves")


def test_a_reschedule_texts_the_new_and_the_old_time(stack: Stack, trigger: QueueTrigger) -> None:
    appointment = stack.clinic.book(booking(at(WED, "10:00")))
    relay_all(stack)
    trigger.drain()
    stack.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(THU, "15:30")))
    relay_all(stack)
    trigger.drain()
    texts = [text for _, text in stack.sms()]
    assert len(texts) == 2
    assert "cambió al jueves 3 de diciembre, 15:30 (hora de Lima)" in texts[1]
    assert "(antes: miércoles 2 de diciembre, 10:00 (hora de Lima))" in texts[1]


def test_a_poison_event_ends_in_the_dlq_while_healthy_ones_are_sent(
    stack: Stack, trigger: QueueTrigger
) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.events_url,
        MessageBody=json.dumps({"event_id": "e-1", "type": "AppointmentTeleported"}),
        MessageGroupId="some-appointment",
        MessageDeduplicationId="e-1",
    )
    stack.clinic.book(booking(at(WED, "10:00")))
    relay_all(stack)

    with service_logs(notifications.logger) as logs:
        assert trigger.drain() == MAX_RECEIVE_COUNT

    (dead,) = peek(stack.sqs, stack.events_dlq_url)
    assert json.loads(dead["Body"])["type"] == "AppointmentTeleported"
    assert peek(stack.sqs, stack.events_url) == []
    assert len(stack.sms()) == 1
    failures = [r for r in log_records(logs) if r["message"].startswith("record failed")]
    assert {(r["error_type"], r["cause_type"]) for r in failures} == {("PoisonMessage", "KeyError")}
