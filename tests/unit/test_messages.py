from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from adapters.clinics import StaticClinicDirectory
from adapters.links import random_link_keys
from adapters.memory.patients import InMemorySentMessages
from adapters.memory.store import (
    InMemoryNotifier,
    InMemoryProcessedEvents,
    InMemoryRepositories,
)
from domain import events as ev
from domain.appointment import Status
from domain.clinics import DEMO_CLINIC, ClinicProfile
from domain.commands import CancelAppointment, ChangeStatus, RegisterDoctor, RescheduleAppointment
from domain.messages import TEMPLATES, Reply, local_when, message_for, offer_message, reply_for
from domain.replies import DeliveryFailure
from domain.use_cases import PatientMessenger
from domain.use_cases.links import Links
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


LINK = "https://citas.example/p/TOKEN"


@pytest.mark.parametrize(
    ("kind", "data", "zone", "expected"),
    [
        (
            ev.AppointmentRequested,
            {"start": LIMA_START},
            "America/Lima",
            "Hola, reservaste una cita con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Lima). ¿Nos confirmas? Responde SI para confirmar o NO para cancelar, o entra aquí: "
            f"{LINK}",
        ),
        (
            ev.AppointmentRequested,
            {"start": SCL_START},
            "America/Santiago",
            "Hola, reservaste una cita con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Santiago). ¿Nos confirmas? Responde SI para confirmar o NO para cancelar, o entra "
            f"aquí: {LINK}",
        ),
        (
            ev.ConfirmationRequested,
            {"start": LIMA_START, "step": "ask_48h"},
            "America/Lima",
            "Hola, tu cita con Dra. Rosa es el lunes 7 de diciembre, 10:00 (hora de Lima) y aún "
            "no está confirmada. Responde SI para confirmar o NO para cancelar, o entra aquí: "
            f"{LINK}",
        ),
        (
            ev.AppointmentAtRisk,
            {"start": SCL_START, "step": "at_risk_24h"},
            "America/Santiago",
            "Tu cita con Dra. Rosa es el lunes 7 de diciembre, 10:00 (hora de Santiago) y sigue "
            f"sin confirmar. Responde SI si vienes o NO para liberar el horario: {LINK}",
        ),
        (
            ev.AppointmentRescheduled,
            {"start": LIMA_START, "previous_start": "2026-12-04T19:30:00+00:00"},
            "America/Lima",
            "Hola, tu cita con Dra. Rosa cambió al lunes 7 de diciembre, 10:00 (hora de Lima) "
            "(antes: viernes 4 de diciembre, 14:30 (hora de Lima)). ¿Nos confirmas el nuevo "
            "horario? Responde SI para confirmar o NO para cancelar, o entra aquí: "
            f"{LINK}",
        ),
        (
            ev.AppointmentRescheduled,
            {"start": SCL_START, "previous_start": "2026-12-04T17:30:00+00:00"},
            "America/Santiago",
            "Hola, tu cita con Dra. Rosa cambió al lunes 7 de diciembre, 10:00 (hora de "
            "Santiago) (antes: viernes 4 de diciembre, 14:30 (hora de Santiago)). ¿Nos "
            "confirmas el nuevo horario? Responde SI para confirmar o NO para cancelar, o entra "
            f"aquí: {LINK}",
        ),
        (
            ev.AppointmentConfirmed,
            {"start": LIMA_START},
            "America/Lima",
            "¡Listo! Tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de Lima) está "
            f"confirmada. Si necesitas cambiarla, entra aquí: {LINK}",
        ),
        (
            ev.AppointmentCancelled,
            {"start": LIMA_START},
            "America/Lima",
            "Hola, tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de Lima) fue "
            "cancelada. Si quieres otra hora, responde a este mensaje o llama a la clínica. "
            f"Detalle: {LINK}",
        ),
        (
            ev.AppointmentCancelled,
            {"start": SCL_START},
            "America/Santiago",
            "Hola, tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de Santiago) fue "
            "cancelada. Si quieres otra hora, responde a este mensaje o llama a la clínica. "
            f"Detalle: {LINK}",
        ),
        (
            ev.ReminderDue,
            {"start": LIMA_START, "step": "remind_24h", "lead_hours": 24},
            "America/Lima",
            "Recordatorio: tu cita con Dra. Rosa es el lunes 7 de diciembre, 10:00 (hora de "
            f"Lima). Si no puedes venir, responde NO o cambia la hora aquí: {LINK}",
        ),
        (
            # Published before the cadence: no lead, the day-before reminder.
            ev.ReminderDue,
            {"start": SCL_START},
            "America/Santiago",
            "Recordatorio: tu cita con Dra. Rosa es el lunes 7 de diciembre, 10:00 (hora de "
            f"Santiago). Si no puedes venir, responde NO o cambia la hora aquí: {LINK}",
        ),
        (
            ev.ReminderDue,
            {"start": SCL_START, "step": "remind_2h", "lead_hours": 2},
            "America/Santiago",
            "Te esperamos el lunes 7 de diciembre, 10:00 (hora de Santiago) con Dra. Rosa. Si no "
            f"puedes venir, responde NO: {LINK}",
        ),
    ],
)
def test_each_message_reads_exactly_so(
    kind: type[ev.Event], data: dict[str, str], zone: str, expected: str
) -> None:
    message = message_for(
        _event(kind, **data),
        clinic_name="Clínica Sol",
        doctor_name="Dra. Rosa",
        time_zone=zone,
        link=LINK,
    )
    assert message is not None
    # The clinic's name first (one number may write for many clinics), the link last.
    assert message.text == f"Clínica Sol: {expected}"


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Saturday 2026-04-04 is the last day of Chile's summer time (-03); Sunday is -04.
        (datetime(2026, 4, 4, 13, 0, tzinfo=UTC), "sábado 4 de abril, 10:00 (hora de Santiago)"),
        (datetime(2026, 4, 5, 14, 0, tzinfo=UTC), "domingo 5 de abril, 10:00 (hora de Santiago)"),
        # Saturday 2026-09-05 is -04; Sunday 2026-09-06, after the change, is -03.
        (
            datetime(2026, 9, 5, 14, 0, tzinfo=UTC),
            "sábado 5 de septiembre, 10:00 (hora de Santiago)",
        ),
        (
            datetime(2026, 9, 6, 13, 0, tzinfo=UTC),
            "domingo 6 de septiembre, 10:00 (hora de Santiago)",
        ),
    ],
)
def test_santiago_messages_across_the_dst_change_keep_the_wall_time(
    instant: datetime, expected: str
) -> None:
    message = message_for(
        _event(ev.AppointmentRequested, start=instant.isoformat()),
        clinic_name="Clínica Sol",
        doctor_name="Dra. Rosa",
        time_zone="America/Santiago",
        link=LINK,
    )
    assert message is not None
    assert f"el {expected}. ¿Nos confirmas?" in message.text


def test_lima_has_no_dst_the_same_utc_hour_is_the_same_wall_time_all_year() -> None:
    for month in (1, 4, 7, 9, 12):
        when = local_when(datetime(2026, month, 7, 15, 0, tzinfo=UTC), "America/Lima")
        assert when.endswith("10:00 (hora de Lima)")


@pytest.mark.parametrize(
    ("start", "zone", "expires", "now", "expected"),
    [
        (
            LIMA_START,
            "America/Lima",
            "2026-12-01T15:30:00+00:00",
            "2026-12-01T15:00:00+00:00",
            "Hola, se liberó un horario con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Lima). Te lo guardamos hasta las 10:30. Responde SI para tomarlo o NO para dejarlo, "
            f"o entra aquí: {LINK}",
        ),
        (
            SCL_START,
            "America/Santiago",
            "2026-12-01T13:30:00+00:00",
            "2026-12-01T13:00:00+00:00",
            "Hola, se liberó un horario con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Santiago). Te lo guardamos hasta las 10:30. Responde SI para tomarlo o NO para "
            f"dejarlo, o entra aquí: {LINK}",
        ),
        (
            # A hold that runs into another day says which.
            LIMA_START,
            "America/Lima",
            "2026-12-02T15:00:00+00:00",
            "2026-12-01T15:00:00+00:00",
            "Hola, se liberó un horario con Dra. Rosa el lunes 7 de diciembre, 10:00 (hora de "
            "Lima). Te lo guardamos hasta el miércoles 2 de diciembre a las 10:00. Responde SI "
            f"para tomarlo o NO para dejarlo, o entra aquí: {LINK}",
        ),
    ],
)
def test_the_waitlist_offer_reads_exactly_so(
    start: str, zone: str, expires: str, now: str, expected: str
) -> None:
    message = offer_message(
        clinic_name="Clínica Sol",
        doctor_name="Dra. Rosa",
        time_zone=zone,
        start=datetime.fromisoformat(start),
        expires_at=datetime.fromisoformat(expires),
        now=datetime.fromisoformat(now),
        link=LINK,
    )
    assert message.text == f"Clínica Sol: {expected}"
    assert (message.kind, message.template, message.asks) == ("offer", "citas_oferta", True)
    assert message.template == TEMPLATES["offer"]
    when = local_when(datetime.fromisoformat(start), zone)
    assert message.parameters[:3] == ("Clínica Sol", "Dra. Rosa", when)
    assert message.parameters[-1] == LINK and len(message.parameters) == 5


@pytest.mark.parametrize(
    ("reply", "zone", "expected"),
    [
        (
            Reply.OFFER_ACCEPTED,
            "America/Lima",
            "Listo: reservamos tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de "
            f"Lima). Te esperamos. Detalle: {LINK}",
        ),
        (
            Reply.OFFER_ACCEPTED,
            "America/Santiago",
            "Listo: reservamos tu cita con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora de "
            f"Santiago). Te esperamos. Detalle: {LINK}",
        ),
        (
            Reply.OFFER_DECLINED,
            "America/Lima",
            "Entendido, liberamos el horario; sigues en la lista de espera.",
        ),
        (
            Reply.OFFER_EXPIRED,
            "America/Santiago",
            "Lo sentimos, ese horario ya no está guardado; sigues en la lista de espera.",
        ),
        (
            Reply.OFFER_BUSY,
            "America/Santiago",
            "No pudimos reservar el horario con Dra. Rosa del lunes 7 de diciembre, 10:00 (hora "
            "de Santiago): ya tienes otra cita a esa hora. Responde NO para dejarlo o llama a la "
            "clínica.",
        ),
    ],
)
def test_the_answers_about_an_offer_read_exactly_so(reply: Reply, zone: str, expected: str) -> None:
    start = LIMA_START if zone == "America/Lima" else SCL_START
    when = local_when(datetime.fromisoformat(start), zone)
    content = reply_for(
        reply, clinic_name="Clínica Sol", doctor_name="Dra. Rosa", when=when, link=LINK
    )
    assert content.text == f"Clínica Sol: {expected}"
    assert content.template is None and not content.asks


@pytest.mark.parametrize(
    "kind",
    [
        ev.AppointmentCompleted,
        ev.AppointmentMarkedNoShow,
        ev.TimeOffAdded,
        # The end of an offer: the patient's page or reply already answered.
        ev.WaitlistOfferAccepted,
        ev.WaitlistOfferExpired,
        # Its own path (`offer_message`), from the waitlist entry.
        ev.WaitlistOfferMade,
    ],
)
def test_other_changes_send_no_message(kind: type[ev.Event]) -> None:
    assert (
        message_for(
            _event(kind, start=LIMA_START, doctor_id="d"),
            clinic_name="Clínica Sol",
            doctor_name="x",
            time_zone="America/Lima",
            link=LINK,
        )
        is None
    )


@pytest.mark.parametrize("kind", [ev.AppointmentConfirmed, ev.AppointmentCancelled])
def test_what_the_patient_did_themselves_sends_no_message(kind: type[ev.Event]) -> None:
    event = _event(kind, start=LIMA_START, by="patient")
    assert (
        message_for(event, clinic_name="Sol", doctor_name="x", time_zone="America/Lima", link=LINK)
        is None
    )


class Messaging:
    def __init__(self, world: World, clinic: ClinicProfile = DEMO_CLINIC) -> None:
        self.world = world
        self.notifier = InMemoryNotifier()
        self.sent = InMemorySentMessages(world.store)
        self.links = Links(random_link_keys(), "https://citas.example")
        self.messenger = PatientMessenger(
            StaticClinicDirectory([(clinic, "local-demo")]),
            InMemoryRepositories(world.store),
            self.notifier,
            InMemoryProcessedEvents(world.store),
            self.sent,
            self.links,
            world.clock,
        )

    def deliver_all(self) -> list[str]:
        for event in list(self.world.store.outbox.values()):
            self.messenger.handle(event)
        return [text for _, text, _ in self.notifier.sent]

    def link_of(self, appointment_id: str) -> str:
        appointment = self.world.clinic.get(appointment_id)
        return self.links.url(DEMO_CLINIC, self.links.token(appointment))


def test_a_booking_asks_the_patient_to_confirm_with_their_link(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))

    link = messaging.link_of(appointment.appointment_id)
    assert messaging.deliver_all() == [
        "Clínica Demo: Hola, reservaste una cita con Dra. Rosa Quispe el miércoles 2 de "
        "diciembre, 10:00 (hora de Lima). ¿Nos confirmas? Responde SI para confirmar o NO para "
        f"cancelar, o entra aquí: {link}"
    ]
    [message] = messaging.notifier.messages
    assert message.phone == appointment.patient.phone
    assert (message.channel, message.link, message.template) == ("sms", link, "citas_reserva")
    # It asked: the appointment now awaits the patient's answer.
    contact = InMemoryRepositories(world.store).contacts("demo").get(appointment.patient.key)
    assert contact is not None
    assert contact.awaiting == {appointment.appointment_id: appointment.start}


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
    assert world.clinic.run_cadence()
    world.clinic.cancel(CancelAppointment(appointment.appointment_id))

    texts = messaging.deliver_all()

    assert not any("sigue sin confirmar" in t for t in texts)
    link = messaging.link_of(appointment.appointment_id)
    assert texts[-1].endswith(
        "fue cancelada. Si quieres otra hora, responde a este mensaje o llama a la clínica. "
        f"Detalle: {link}"
    )


def test_a_stale_step_after_a_reschedule_is_not_sent_and_the_new_one_is(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    world.clock.set(at(WED, "10:00"))
    world.clinic.run_cadence()
    later = at(THU + timedelta(days=1), "10:00")
    world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, later))
    texts = messaging.deliver_all()
    assert not any("sigue sin confirmar" in t for t in texts)

    world.clock.set(at(THU, "10:00"))
    world.clinic.run_cadence()
    texts = messaging.deliver_all()
    assert texts[-1].startswith(
        "Clínica Demo: Tu cita con Dra. Rosa Quispe es el viernes 4 de diciembre, 10:00 (hora "
        "de Lima) y sigue sin confirmar."
    )


def test_the_patient_is_told_when_the_clinic_confirms(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    assert len(messaging.deliver_all()) == 1  # the booking's, asking to confirm
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    texts = messaging.deliver_all()
    assert len(texts) == 2
    assert texts[1].startswith("Clínica Demo: ¡Listo! Tu cita con Dra. Rosa Quispe del miércoles")


def test_a_booking_confirmed_before_its_message_went_asks_nothing(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    world.clinic.change_status(ChangeStatus(appointment.appointment_id, Status.CONFIRMED))

    # No "¿nos confirmas?" for a visit already confirmed: only that it is.
    [text] = messaging.deliver_all()
    assert text.startswith("Clínica Demo: ¡Listo! Tu cita con Dra. Rosa Quispe del miércoles")


def test_what_the_patient_confirmed_or_cancelled_themselves_is_not_told_again(
    world: World,
) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    assert len(messaging.deliver_all()) == 1  # the booking's
    world.clinic.change_status(
        ChangeStatus(appointment.appointment_id, Status.CONFIRMED, by_patient=True)
    )
    world.clinic.cancel(CancelAppointment(appointment.appointment_id, by_patient=True))

    assert len(messaging.deliver_all()) == 1  # nothing more: their page or reply told them


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
        "(hora de Lima) fue cancelada. Si quieres otra hora, responde a este mensaje o llama a "
        f"la clínica. Detalle: {messaging.link_of(appointment.appointment_id)}"
    ]


def test_a_superseded_reschedule_message_is_not_sent(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    for hhmm in ("11:00", "12:00"):
        world.clinic.reschedule(RescheduleAppointment(appointment.appointment_id, at(THU, hhmm)))

    texts = messaging.deliver_all()

    assert len(texts) == 1
    assert "cambió al jueves 3 de diciembre, 12:00" in texts[0]


def test_an_opted_out_phone_gets_nothing(world: World) -> None:
    messaging = Messaging(world)
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    contacts = InMemoryRepositories(world.store).contacts("demo")
    contacts.set_opted_out(appointment.patient.key, True, None)

    assert messaging.deliver_all() == []


def test_a_message_due_in_quiet_hours_waits_for_8_and_goes_once(world: World) -> None:
    messaging = Messaging(world)
    world.clock.set(at(WED, "22:30"))
    appointment = world.clinic.book(booking(at(THU, "10:00")))

    assert messaging.deliver_all() == []  # 22:30 in Lima: held
    world.clock.set(at(THU, "07:59"))
    assert messaging.messenger.send_held("demo") == 0
    world.clock.set(at(THU, "08:00"))
    assert messaging.messenger.send_held("demo") == 1
    assert messaging.messenger.send_held("demo") == 0
    [message] = messaging.notifier.messages
    assert message.appointment_id == appointment.appointment_id


def test_a_message_in_quiet_hours_for_a_visit_before_8_goes_at_once(world: World) -> None:
    messaging = Messaging(world)
    world.clock.set(at(WED, "22:30"))
    world.clinic.register_doctor(
        RegisterDoctor(
            "noche",
            "Dr. Noche",
            "PE",
            {d: [["00:00", "24:00"]] for d in ("wed", "thu")},
            min_notice_minutes=0,
        )
    )
    world.clinic.book(booking(at(THU, "07:00"), doctor="noche"))

    assert len(messaging.deliver_all()) == 1


def test_at_risk_goes_on_every_channel_of_the_clinic(world: World) -> None:
    clinic = attrs.evolve(DEMO_CLINIC, channels=("whatsapp", "sms"))
    messaging = Messaging(world, clinic)
    world.clinic.book(booking(at(THU, "10:00")))
    messaging.deliver_all()
    assert [m.channel for m in messaging.notifier.messages] == ["whatsapp"]

    world.clock.set(at(WED, "10:00"))
    world.clinic.run_cadence()
    messaging.deliver_all()
    assert [m.channel for m in messaging.notifier.messages] == ["whatsapp", "whatsapp", "sms"]
    whatsapp = messaging.notifier.messages[1]
    assert whatsapp.template == "citas_en_riesgo"
    assert [b.split(":")[0] for b in whatsapp.buttons] == ["confirmar", "cancelar", "reprogramar"]


def test_a_refused_whatsapp_message_goes_by_sms(world: World) -> None:
    messaging = Messaging(world, attrs.evolve(DEMO_CLINIC, channels=("whatsapp",)))
    messaging.notifier.refusing.add("whatsapp")
    world.clinic.book(booking(at(WED, "10:00")))

    messaging.deliver_all()
    assert [m.channel for m in messaging.notifier.messages] == ["sms"]


def test_a_whatsapp_message_that_fails_later_is_resent_by_sms_once(world: World) -> None:
    messaging = Messaging(world, attrs.evolve(DEMO_CLINIC, channels=("whatsapp",)))
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    messaging.deliver_all()
    [sent] = messaging.notifier.messages
    failure = DeliveryFailure(
        channel="whatsapp", message_id="whatsapp-1", recipient=appointment.patient.phone
    )

    assert messaging.messenger.fall_back(failure)
    assert not messaging.messenger.fall_back(failure)  # a redelivered status
    assert not messaging.messenger.fall_back(attrs.evolve(failure, message_id="unknown"))
    sms = messaging.notifier.messages[-1]
    assert (sms.channel, sms.text, sms.phone) == ("sms", sent.text, appointment.patient.phone)


def test_a_failed_whatsapp_message_that_no_longer_holds_is_not_resent(world: World) -> None:
    messaging = Messaging(world, attrs.evolve(DEMO_CLINIC, channels=("whatsapp",)))
    appointment = world.clinic.book(booking(at(WED, "10:00")))
    messaging.deliver_all()
    world.clinic.cancel(CancelAppointment(appointment.appointment_id))
    messaging.deliver_all()
    _, cancelled = messaging.notifier.messages
    phone = appointment.patient.phone
    # The booking's message failed: the visit is cancelled now, so no "reservaste" by SMS...
    assert not messaging.messenger.fall_back(
        DeliveryFailure(channel="whatsapp", message_id="whatsapp-1", recipient=phone)
    )
    # ...but the cancellation itself still goes.
    assert messaging.messenger.fall_back(
        DeliveryFailure(channel="whatsapp", message_id="whatsapp-2", recipient=phone)
    )
    assert messaging.notifier.messages[-1].text == cancelled.text


def test_a_failure_reported_in_quiet_hours_sends_no_sms_at_night(world: World) -> None:
    messaging = Messaging(world, attrs.evolve(DEMO_CLINIC, channels=("whatsapp",)))
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    messaging.deliver_all()
    world.clock.set(at(WED, "22:00"))
    failure = DeliveryFailure(
        channel="whatsapp", message_id="whatsapp-1", recipient=appointment.patient.phone
    )
    assert not messaging.messenger.fall_back(failure)
    assert len(messaging.notifier.messages) == 1


def test_an_at_risk_message_that_went_by_sms_too_needs_no_fallback(world: World) -> None:
    messaging = Messaging(world, attrs.evolve(DEMO_CLINIC, channels=("whatsapp", "sms")))
    appointment = world.clinic.book(booking(at(THU, "10:00")))
    messaging.deliver_all()
    world.clock.set(at(WED, "10:00"))
    world.clinic.run_cadence()
    messaging.deliver_all()
    assert [m.channel for m in messaging.notifier.messages] == ["whatsapp", "whatsapp", "sms"]
    at_risk = DeliveryFailure(
        channel="whatsapp", message_id="whatsapp-2", recipient=appointment.patient.phone
    )
    assert not messaging.messenger.fall_back(at_risk)
    assert len(messaging.notifier.messages) == 3
