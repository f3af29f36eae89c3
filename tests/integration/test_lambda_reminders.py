"""The reminders Lambda on EventBridge's schedule, on DynamoDB Local, down to the patient's SMS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.appointment import Status
from domain.commands import CancelAppointment, ChangeStatus, RescheduleAppointment
from domain.errors import TemporarilyUnavailable
from ports.repositories import AppointmentRepository
from tests.integration.aws_world import SANTIAGO, THU, WED, at, booking, patient
from tests.integration.lambda_stack import (
    FakeContext,
    LambdaFunction,
    QueueTrigger,
    Stack,
    aws_stack,
    log_records,
    scheduled_event,
    service_logs,
    stream_event,
)
from tests.support.dynamodb_local import DynamoDBLocal

reminders = LambdaFunction("reminders")
relay = LambdaFunction("outbox_relay")
notifications = LambdaFunction("notifications")


@pytest.fixture
def stack(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with aws_stack(dynamodb_local.endpoint_url, monkeypatch) as stack:
        yield stack


def fire(stack: Stack, when: datetime) -> int:
    """The schedule fires at `when` (the clock says so too); returns how many were reminded."""
    stack.clock.set(when.astimezone(UTC))
    response: dict[str, Any] = reminders.handler(scheduled_event(when), FakeContext())
    return int(response["recorded"])


def deliver(stack: Stack) -> list[str]:
    """Relay what was committed and text the patients; returns every SMS text so far."""
    assert relay.handler(stream_event(stack.stream.read()), FakeContext()) == {
        "batchItemFailures": []
    }
    QueueTrigger(stack.sqs, stack.events_url, notifications.handler).drain()
    return [text for _, text in stack.sms()]


def test_the_24_hours_are_real_hours_across_santiagos_dst_change(stack: Stack) -> None:
    stack.clock.set(datetime(2026, 9, 1, tzinfo=UTC))
    # Sunday 2026-09-06 10:00 is -03; 24 real hours earlier Santiago's clocks showed 09:00 (-04).
    start = datetime(2026, 9, 6, 10, 0, tzinfo=SANTIAGO)
    booked = stack.clinic.book(booking(start, doctor="vera"))
    # Confirmed: the day-before message is the plain reminder (unconfirmed, it is at risk).
    stack.clinic.change_status(ChangeStatus(booked.appointment_id, Status.CONFIRMED))

    with service_logs(reminders.logger) as logs:
        assert fire(stack, datetime(2026, 9, 5, 8, 59, tzinfo=SANTIAGO)) == 0
        assert fire(stack, datetime(2026, 9, 5, 9, 0, tzinfo=SANTIAGO)) == 1
        assert fire(stack, datetime(2026, 9, 5, 9, 15, tzinfo=SANTIAGO)) == 0  # once only

    texts = deliver(stack)
    assert texts[-1].startswith(
        "Clínica Demo: Recordatorio: tu cita con Dra. Vera Rojas es el domingo 6 de septiembre, "
        "10:00 (hora de Santiago). Si no puedes venir, responde NO o cambia la hora aquí: "
        "http://127.0.0.1:8000/p/"
    )
    assert sum(t.startswith("Clínica Demo: Recordatorio") for t in texts) == 1
    runs = [r for r in log_records(logs) if r["message"] == "cadence recorded"]
    assert [r["recorded"] for r in runs] == [0, 1, 0]
    assert all(r["correlation_id"] for r in runs)  # the EventBridge event id
    for record in log_records(logs):
        assert patient(1).phone not in str(record) and patient(1).name not in str(record)


def test_overlapping_runs_remind_once(stack: Stack) -> None:
    booked = stack.clinic.book(booking(at(THU, "10:00")))
    stack.clinic.change_status(ChangeStatus(booked.appointment_id, Status.CONFIRMED))
    assert fire(stack, at(WED, "10:00")) + fire(stack, at(WED, "10:00")) == 1
    texts = deliver(stack)
    assert sum(t.startswith("Clínica Demo: Recordatorio") for t in texts) == 1


def test_a_cancelled_appointment_gets_no_reminder(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(THU, "10:00")))
    stack.clinic.cancel(CancelAppointment(appointment.appointment_id))
    assert fire(stack, at(WED, "10:00")) == 0
    assert not any("Recordatorio:" in t or "sin confirmar" in t for t in deliver(stack))


def test_a_reminder_cancelled_before_it_is_sent_says_nothing(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(THU, "10:00")))
    assert fire(stack, at(WED, "10:00")) == 1
    stack.clinic.cancel(CancelAppointment(appointment.appointment_id))
    texts = deliver(stack)
    # Neither the booking message nor the reminder still holds once cancelled.
    assert [t.partition(" Detalle: http")[0] for t in texts] == [
        "Clínica Demo: Hola, tu cita con Dra. Rosa Quispe del jueves 3 de diciembre, 10:00 "
        "(hora de Lima) fue cancelada. Si quieres otra hora, responde a este mensaje o llama a "
        "la clínica."
    ]


def test_a_rescheduled_appointment_is_reminded_for_its_new_time_only(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(THU, "10:00")))
    friday = THU + timedelta(days=1)
    stack.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(friday, "15:00")))
    stack.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    assert fire(stack, at(WED, "10:00")) == 0
    assert fire(stack, at(THU, "14:59")) == 0
    assert fire(stack, at(THU, "15:00")) == 1
    reminders_sent = [t for t in deliver(stack) if t.startswith("Clínica Demo: Recordatorio")]
    assert [t.partition(" aquí: ")[0] for t in reminders_sent] == [
        "Clínica Demo: Recordatorio: tu cita con Dra. Rosa Quispe es el viernes 4 de diciembre, "
        "15:00 (hora de Lima). Si no puedes venir, responde NO o cambia la hora"
    ]


def test_a_reminder_already_recorded_is_not_sent_after_a_reschedule(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(THU, "10:00")))
    assert fire(stack, at(WED, "10:00")) == 1
    # Moved before the notification went out: the reminder for the old time says nothing.
    stack.clinic.reschedule(
        RescheduleAppointment(appointment.appointment_id, at(THU + timedelta(days=1), "15:00"))
    )
    assert not any("Recordatorio:" in t or "sin confirmar" in t for t in deliver(stack))


def test_a_failed_run_raises_logs_no_message_and_the_next_run_catches_up(stack: Stack) -> None:
    appointment = stack.clinic.book(booking(at(THU, "10:00")))
    real = stack.app.for_clinic("demo").appointments

    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def list_by_country_status(self, *args: Any, **kwargs: Any) -> Any:
            raise TemporarilyUnavailable(
                f"dynamodb is busy near {patient(1).phone}", service="dynamodb"
            )

    stack.rebuild({AppointmentRepository: Unreachable()})
    with service_logs(reminders.logger) as logs, pytest.raises(TemporarilyUnavailable):
        fire(stack, at(WED, "10:00"))
    (failure,) = log_records(logs)
    assert (failure["message"], failure["error_code"]) == (
        "reminders run failed",
        "temporarily_unavailable",
    )
    assert patient(1).phone not in json.dumps(failure)

    stack.rebuild()
    assert fire(stack, at(WED, "10:15")) == 1
    assert stack.clinic.get(appointment.appointment_id).cadence_start == appointment.start


def test_each_run_emits_its_count_as_an_emf_metric(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.clinic.book(booking(at(THU, "10:00")))
    capsys.readouterr()
    fire(stack, at(WED, "10:00"))
    blobs = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"') and "CadenceStepsDue" in line
    ]
    assert [b["CadenceStepsDue"] for b in blobs] == [[1.0]]
    assert blobs[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "citas"
