from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.clinics import StaticClinicDirectory
from adapters.memory.store import (
    InMemoryNotifier,
    InMemoryProcessedEvents,
    InMemoryRepositories,
)
from domain import events as ev
from domain.appointment import Status
from domain.clinics import DEMO_CLINIC
from domain.commands import CancelAppointment, ChangeStatus, RescheduleAppointment
from domain.messages import local_when, message_for
from domain.use_cases import PatientMessenger
from tests.unit.conftest import SANTIAGO, THU, WED, World, at, booking

LIMA_START = "2026-12-07T15:00:00+00:00"  # lunes 7 de diciembre, 10:00 en Lima
SCL_START = "2026-12-07T13:00:00+00:00"  # 10:00 en Santiago (verano, -03)


def _event(kind: type[ev.Event], **data: str) -> ev.Event:
    return kind("e1", "sol", "a1", 2, datetime(2026, 12, 1, tzinfo=UTC), data)


def test_local_time_is_written_in_spanish_with_the_clinics_city() -> None:
    lima = datetime.fromisoformat(LIMA_START)
    assert local_when(lima, "America/Lima") == "lunes 7 de diciembre, 10:00 (hora de Lima)"


def test_santiago_in_winter_and_summer_shows_the_same_wall_time_for_different_offsets() -> None:
    winter = datetime(2026, 7, 6, 14, 0, tzinfo=UTC)  # -04
    summer = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)  # -03
    assert local_when(winter, "America/Santiago") == "lunes 6 de julio, 10:00 (hora de Santiago)"
    assert (
        local_when(summer, "America/Santiago") == "lunes 7 de diciembre, 10:00 (hora de Santiago)"
    )


@pytest.mark.parametrize(
    ("kind", "data", "zone", "expected"),
    [
        (
            ev.AppointmentRequested,
            {"start": LIMA_START},
            "America/Lima",
            "Hola, recibimos tu reserva con Dra. Rosa para el lunes 7 de diciembre, 10:00 "
            "(hora de Lima). La clínica te confirmará la cita.",
        ),
        (
            ev.AppointmentRequested,
            {"start": SCL_START},
            "America/Santiago",
            "Hola, recibimos tu reserva con Dra. Rosa para el lunes 7 de diciembre, 10:00 "
            "(hora de Santiago). La clínica te confirmará la cita.",
        ),
        (
            ev.AppointmentRescheduled,
            {"start": LIMA_START, "previous_start": "2026-12-04T19:30:00+00:00"},
            "America/Lima",
            "Hola, tu cita con Dra. Rosa cambió al lunes 7 de diciembre, 10:00 (hora de Lima) "
            "(antes: viernes 4 de diciembre, 14:30 (hora de Lima)). La clínica te confirmará "
            "el nuevo horario.",
        ),
        (
            ev.AppointmentRescheduled,
            {"start": SCL_START, "previous_start": "2026-12-04T17:30:00+00:00"},
            "America/Santiago",
            "Hola, tu cita con Dra. Rosa cambió al lunes 7 de diciembre, 10:00 (hora de "
            "Santiago) (antes: viernes 4 de diciembre, 14:30 (hora de Santiago)). La clínica te "
            "confirmará el nuevo horario.",
        ),
        (
            ev.AppointmentCancelled,
            {"start": LIMA_START},
            "America/Lima",
            "Hola, tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de Lima) fue "
            "cancelada.",
        ),
        (
            ev.AppointmentCancelled,
            {"start": SCL_START},
            "America/Santiago",
            "Hola, tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de Santiago) fue "
            "cancelada.",
        ),
        (
            ev.ReminderDue,
            {"start": LIMA_START},
            "America/Lima",
            "Recordatorio: tienes cita con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Lima). Si no puedes asistir, avisa a la clínica.",
        ),
        (
            ev.ReminderDue,
            {"start": SCL_START},
            "America/Santiago",
            "Recordatorio: tienes cita con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Santiago). Si no puedes asistir, avisa a la clínica.",
        ),
    ],
)
def test_each_message_reads_exactly_so(
    kind: type[ev.Event], data: dict[str, str], zone: str, expected: str
) -> None:
    text = message_for(
        _event(kind, **data), clinic_name="Clínica Sol", doctor_name="Dra. Rosa", time_zone=zone
    )
    # The clinic's name first: one number may write for many clinics.
    assert text == f"Clínica Sol: {expected}"


@pytest.mark.parametrize(
    "kind",
    [ev.AppointmentConfirmed, ev.AppointmentCompleted, ev.AppointmentMarkedNoShow],
)
def test_other_changes_send_no_message(kind: type[ev.Event]) -> None:
    assert (
        message_for(
            _event(kind, start=LIMA_START),
            clinic_name="Clínica Sol",
            doctor_name="x",
            time_zone="America/Lima",
        )
        is None
    )


class Messaging:
    def __init__(self, world: World) -> None:
        self.world = world
        self.notifier = InMemoryNotifier()
        self.messenger = PatientMessenger(
            StaticClinicDirectory([(DEMO_CLINIC, "local-demo")]),
            InMemoryRepositories(world.store),
            self.notifier,
            InMemoryProcessedEvents(world.store),
        )

    def deliver_all(self) -> list[str]:
        for event in list(self.world.store.outbox.values()):
            self.messenger.handle(event)
        return [text for _, text, _ in self.notifier.sent]


def test_a_booking_sends_one_message_to_the_patients_phone(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))

    assert messaging.deliver_all() == [
        "Clínica Demo: Hola, recibimos tu reserva con Dra. Rosa Quispe para el miércoles 2 de "
        "diciembre, 10:00 (hora de Lima). La clínica te confirmará la cita."
    ]
    assert messaging.notifier.sent[0][0] == appointment.patient.phone


def test_a_redelivered_event_sends_nothing_twice(world: World) -> None:
    messaging = Messaging(world)
    world.clinic.book(booking(at(WED, "10:00")))

    messaging.deliver_all()
    messaging.deliver_all()

    assert len(messaging.notifier.sent) == 1


def test_a_reminder_for_a_cancelled_appointment_is_not_sent(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clock.set(at(WED, "10:00"))
    world.clinic.send_reminders()
    world.clinic.cancel(CancelAppointment(appointment.appointment_id))

    texts = messaging.deliver_all()

    assert not any("Recordatorio:" in t for t in texts)
    assert texts[-1].endswith("fue cancelada.")


def test_a_stale_reminder_after_a_reschedule_is_not_sent_and_the_new_one_is(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clock.set(at(WED, "10:00"))
    world.clinic.send_reminders()
    later = at(THU + timedelta(days=1), "10:00")
    world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, later))
    texts = messaging.deliver_all()
    assert not any("Recordatorio:" in t for t in texts)

    world.clock.set(at(THU, "10:00"))
    world.clinic.send_reminders()
    texts = messaging.deliver_all()
    assert texts[-1] == (
        "Clínica Demo: Recordatorio: tienes cita con Dra. Rosa Quispe el viernes 4 de "
        "diciembre, 10:00 (hora de Lima). Si no puedes asistir, avisa a la clínica."
    )


def test_a_confirmation_sends_no_extra_message(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    assert len(messaging.deliver_all()) == 1


def test_santiago_messages_use_santiago_time(world: World) -> None:
    messaging = Messaging(world)
    start = datetime(2026, 12, 2, 10, 0, tzinfo=SANTIAGO)
    world.clinic.book(booking(start, doctor="matias"))

    assert "miércoles 2 de diciembre, 10:00 (hora de Santiago)" in messaging.deliver_all()[0]


def test_a_booking_message_arriving_after_the_cancellation_is_not_sent(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    world.clinic.cancel(CancelAppointment(appointment.appointment_id))
    requested, cancelled = list(world.store.outbox.values())

    messaging.messenger.handle(cancelled)
    messaging.messenger.handle(requested)

    assert [text for _, text, _ in messaging.notifier.sent] == [
        "Clínica Demo: Hola, tu cita con Dra. Rosa Quispe del miércoles 2 de diciembre, 10:00 "
        "(hora de Lima) fue cancelada."
    ]


def test_a_superseded_reschedule_message_is_not_sent(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    for hhmm in ("11:00", "12:00"):
        world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(THU, hhmm)))

    texts = messaging.deliver_all()

    assert len(texts) == 1
    assert "cambió al jueves 3 de diciembre, 12:00" in texts[0]
