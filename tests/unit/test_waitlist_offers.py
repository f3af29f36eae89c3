"""The patient's side of a waitlist offer: its message, its page, and SI / NO replies.

Everything runs through the real app on the memory backend with a fixed clock: the offer is
made as in production (a booking cancelled, the freed time refilled), its `WaitlistOfferMade`
event is fed to the messenger, and the patient answers through the pages' Lambda handler, the
inbound reply use case or `POST /_local/inbound`.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
import pytest

from adapters.memory.store import InMemoryNotifier
from adapters.system import FixedClock
from domain.appointment import Appointment, Status
from domain.clinics import ClinicProfile
from domain.commands import BookAppointment, CancelAppointment, JoinWaitlist, RegisterDoctor
from domain.errors import NotFound
from domain.patient import Patient
from domain.replies import DeliveryFailure, InboundMessage, Intent, button_intent
from domain.waitlist import WaitlistEntry, WaitStatus
from entrypoints.bootstrap import App, build_app
from entrypoints.config import LocalClinic, Settings
from entrypoints.local.inbound import make_inbound_handler
from entrypoints.messages import reply_to
from tests.unit import test_patient_answers as answers
from tests.unit.apigw import event
from tests.unit.test_pages_render import FOOTER, parse

pages = importlib.import_module("entrypoints.lambda.patient_pages")

# Tuesday 2030-01-01 12:00 in Lima; the freed visit is Monday 2030-01-07 09:00 (-05).
NOW = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
START = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)
HOLD = timedelta(minutes=30)
HOURS = {d: [["09:00", "13:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
ANA = Patient("Ana Pérez", "+51987654321")
LUIS = Patient("Luis Rojas", "+51911222333")
EVA = Patient("Eva Soto", "+51922333444")
SOL = ClinicProfile("sol", "Clínica Sol")
LUNA = ClinicProfile("luna", "Clínica Luna")
WHEN = "lunes 7 de enero, 09:00 (hora de Lima)"
BASE = "https://citas.example/p/"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def make_app(clock: FixedClock, sol: ClinicProfile = SOL) -> App:
    settings = Settings(
        notifier="memory",
        clinics=(LocalClinic(sol, "sol-key-123"), LocalClinic(LUNA, "luna-key-123")),
        public_base_url="https://citas.example",
    )
    built = build_app(settings, clock=clock)
    for clinic in ("sol", "luna"):
        built.for_clinic(clinic).register_doctor(
            RegisterDoctor("dra-rosa", "Dra. Rosa", "PE", HOURS)
        )
    return built


@pytest.fixture
def app(clock: FixedClock) -> App:
    return make_app(clock)


SLOT = timedelta(minutes=30)


def notifier(app: App) -> InMemoryNotifier:
    found = app.messenger.notifier
    assert isinstance(found, InMemoryNotifier)
    return found


def deliver(app: App) -> None:
    """Hand every committed event to the messenger, as the events consumer does."""
    for e in app.outbox.pending(100):
        app.messenger.handle(e)


def book(
    app: App, start: datetime = START, who: Patient = LUIS, doctor: str = "dra-rosa"
) -> Appointment:
    return app.for_clinic("sol").book(BookAppointment(doctor, who, start, None))


def join(app: App, who: Patient = ANA) -> WaitlistEntry:
    day = date(2030, 1, 7)
    return app.for_clinic("sol").join_waitlist(JoinWaitlist("dra-rosa", who, day, day))


def free(app: App, *starts: datetime) -> None:
    """Book and cancel other patients' visits at `starts`: freed time, as in production."""
    for at in starts:
        taken = book(app, at, who=LUIS if at == starts[0] else EVA)
        app.for_clinic("sol").cancel(CancelAppointment(taken.appointment_id))


def refill(app: App, span: timedelta = timedelta(minutes=30)) -> WaitlistEntry:
    [offered] = app.for_clinic("sol").refill("dra-rosa", START, START + span)
    return offered


def offered_to_ana(app: App, *, message: bool = True) -> WaitlistEntry:
    """Ana waits for Dra. Rosa; Luis's Monday 09:00 is cancelled and offered to her."""
    entry = join(app)
    free(app, START)
    offered = refill(app)
    assert offered.waitlist_id == entry.waitlist_id and offered.offer is not None
    if message:
        deliver(app)
    return offered


def entry_now(app: App, entry: WaitlistEntry) -> WaitlistEntry:
    return app.for_clinic("sol").waitlist_entry(entry.waitlist_id)


def page(app: App, method: str, path: str) -> dict[str, Any]:
    """The pages' Lambda handler on one request; a POST carries an empty form."""
    return answers.page(app, method, path, {} if method == "POST" else None)


def reply(app: App, text: str | None = None, *, clinic: ClinicProfile = SOL, **extra: Any) -> Any:
    message = InboundMessage(
        channel=extra.pop("channel", "sms"),
        message_id=extra.pop("message_id", f"m-{len(notifier(app).messages)}-{text}"),
        sender=extra.pop("sender", ANA.phone),
        text=text,
        button=extra.pop("button", None),
    )
    fields: dict[str, Any] = {}
    reply_to(app, clinic, message, fields)
    return fields


def last_text(app: App) -> str:
    return notifier(app).messages[-1].text


def no_appointment(app: App, appointment_id: str) -> bool:
    try:
        app.for_clinic("sol").get(appointment_id)
    except NotFound:
        return True
    return False


# --- the message -------------------------------------------------------------------------------


def test_the_offer_message_names_the_slot_the_hold_and_ends_with_the_offer_link(app: App) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    [message] = [m for m in notifier(app).messages if m.template == "citas_oferta"]
    link = BASE + token
    assert message.text == (
        f"Clínica Sol: Hola, se liberó un horario con Dra. Rosa el {WHEN}. Te lo guardamos "
        f"hasta las 12:30. Responde SI para tomarlo o NO para dejarlo, o entra aquí: {link}"
    )
    assert (message.phone, message.channel, message.link) == (ANA.phone, "sms", link)
    assert message.parameters == ("Clínica Sol", "Dra. Rosa", WHEN, "las 12:30", link)
    assert entry.offer is not None and message.appointment_id == entry.offer.appointment_id
    assert "Ana" not in message.text and ANA.phone not in message.text
    # The phone now awaits an answer about the offer, until its hold ends.
    contact = app.messenger.repositories.contacts("sol").get(ANA.key)
    assert contact is not None
    assert contact.awaiting == {f"w-{entry.waitlist_id}": entry.offer.expires_at}


def test_a_redelivered_offer_event_sends_once(app: App) -> None:
    offered_to_ana(app)
    deliver(app)
    assert len([m for m in notifier(app).messages if m.template == "citas_oferta"]) == 1


def test_on_whatsapp_the_offer_has_aceptar_and_rechazar_buttons_with_its_token(
    clock: FixedClock,
) -> None:
    app = make_app(clock, attrs.evolve(SOL, channels=("whatsapp",)))
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    [message] = [m for m in notifier(app).messages if m.template == "citas_oferta"]
    assert message.channel == "whatsapp"
    assert message.buttons == (f"aceptar:{token}", f"rechazar:{token}")
    assert [button_intent(b) for b in message.buttons] == [
        (Intent.CONFIRM, token),
        (Intent.CANCEL, token),
    ]


def test_an_opted_out_phone_is_not_offered_the_slot_and_the_next_entry_is(app: App) -> None:
    contacts = app.messenger.repositories.contacts("sol")
    contacts.set_opted_out(ANA.key, True, None)
    ana, eva = join(app), join(app, EVA)
    free(app, START)
    # Ana would never hear of it: the slot goes to Eva rather than sit held for nobody.
    assert [
        e.waitlist_id for e in app.for_clinic("sol").refill("dra-rosa", START, START + SLOT)
    ] == [eva.waitlist_id]
    assert entry_now(app, ana).status is WaitStatus.WAITING
    deliver(app)
    assert [m for m in notifier(app).messages if m.phone == ANA.phone] == []


def test_a_phone_that_opts_out_after_the_offer_gets_no_message(app: App) -> None:
    offered_to_ana(app, message=False)
    app.messenger.repositories.contacts("sol").set_opted_out(ANA.key, True, None)
    deliver(app)
    assert [m for m in notifier(app).messages if m.phone == ANA.phone] == []


def test_an_offer_made_in_quiet_hours_goes_at_8_and_is_held_from_then(
    app: App, clock: FixedClock
) -> None:
    clock.set(datetime(2030, 1, 2, 3, 0, tzinfo=UTC))  # Tuesday 22:00 in Lima
    entry = offered_to_ana(app)
    assert entry.offer is not None
    assert entry.offer.expires_at == datetime(2030, 1, 2, 13, 30, tzinfo=UTC)  # 08:30 Lima
    assert notifier(app).messages == []  # Luis's cancellation and Ana's offer: both held
    clock.set(datetime(2030, 1, 2, 12, 59, tzinfo=UTC))
    assert app.messenger.send_held("sol") == 0
    clock.set(datetime(2030, 1, 2, 13, 0, tzinfo=UTC))  # 08:00
    assert app.messenger.send_held("sol") == 2
    assert app.messenger.send_held("sol") == 0
    [message] = [m for m in notifier(app).messages if m.phone == ANA.phone]
    assert "Te lo guardamos hasta las 08:30." in message.text
    assert reply(app, "SI")["reply"] == "offer_accepted"  # and the SMS answer finds it


def test_an_offer_that_ended_before_its_message_went_sends_nothing(app: App) -> None:
    entry = offered_to_ana(app, message=False)
    app.for_clinic("sol").decline_offer(entry.waitlist_id)
    deliver(app)
    assert not [m for m in notifier(app).messages if m.phone == ANA.phone]


def test_taking_the_offer_sends_no_booking_message_and_a_staff_accept_tells_the_patient(
    app: App,
) -> None:
    entry = offered_to_ana(app)
    sent = len(notifier(app).messages)
    _, appointment = app.for_clinic("sol").accept_offer(entry.waitlist_id, by_patient=True)
    deliver(app)
    # Booked confirmed by the patient: no "¿nos confirmas?", no "confirmada" either.
    assert len(notifier(app).messages) == sent
    assert appointment.status is Status.CONFIRMED

    other = make_app(FixedClock(NOW))
    staff = offered_to_ana(other)
    sent = len(notifier(other).messages)
    other.for_clinic("sol").accept_offer(staff.waitlist_id)
    deliver(other)
    [told] = notifier(other).messages[sent:]
    assert told.text.startswith(f"Clínica Sol: ¡Listo! Tu cita con Dra. Rosa del {WHEN} está")


# --- the page --------------------------------------------------------------------------------


def test_the_offer_page_shows_the_slot_the_hold_and_two_buttons(app: App) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    response = page(app, "GET", f"/p/{token}")
    assert response["statusCode"] == 200
    html = response["body"]
    doc = parse(html)
    (root,) = doc.all("html")
    assert root.attrs["lang"] == "es"
    assert doc.texts("h1") == ["Clínica Sol"]
    text = doc.body_text()
    assert "Dra. Rosa" in text and WHEN in text
    assert "Guardado para ti hasta las 12:30." in text
    assert FOOTER in doc.texts("footer")[0]
    forms = doc.all("form")
    assert [(f.attrs["method"], f.attrs["action"]) for f in forms] == [
        ("post", f"{token}/aceptar"),
        ("post", f"{token}/rechazar"),
    ]
    assert doc.texts("button") == ["Aceptar", "Rechazar"]
    assert doc.all("script") == [] and doc.all("input") == []
    assert "Ana" not in html and ANA.phone not in html
    # The same headers as the appointment's page: out of caches, frames and referrers.
    assert response["headers"] == pages._HEADERS


def test_accepting_books_the_slot_and_leads_to_the_new_appointments_page(app: App) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    answer = page(app, "POST", f"/p/{token}/aceptar")
    assert answer["statusCode"] == 303
    booked = entry_now(app, entry)
    assert booked.status is WaitStatus.BOOKED and booked.appointment_id is not None
    appointment = app.for_clinic("sol").get(booked.appointment_id)
    assert appointment.status is Status.CONFIRMED and appointment.start == START
    manage = app.links.token(appointment)
    assert answer["headers"]["Location"] == f"../{manage}?aviso=reservada"
    shown = page(app, "GET", f"/p/{manage}?aviso=reservada")
    assert shown["statusCode"] == 200
    assert pages.pages.NOTICES["reservada"] in shown["body"]
    # A repeat (a double tap, a reload) books nothing more and leads to the same page.
    again = page(app, "POST", f"/p/{token}/aceptar")
    assert again["headers"]["Location"] == f"../{manage}?aviso=reservada"
    # The offer's link now opens the appointment; Rechazar never undoes it.
    assert page(app, "GET", f"/p/{token}")["headers"]["Location"] == f"../{manage}"
    declined = page(app, "POST", f"/p/{token}/rechazar")
    assert declined["headers"]["Location"] == f"../{manage}?aviso=ya_reservada"
    assert app.for_clinic("sol").get(appointment.appointment_id).status is Status.CONFIRMED


def test_declining_frees_the_slot_and_keeps_the_patient_on_the_waitlist(app: App) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    answer = page(app, "POST", f"/p/{token}/rechazar")
    assert answer["statusCode"] == 303
    assert answer["headers"]["Location"] == f"../{token}?aviso=rechazada"
    assert entry_now(app, entry).status is WaitStatus.WAITING
    shown = page(app, "GET", f"/p/{token}?aviso=rechazada")
    assert shown["statusCode"] == 200
    doc = parse(shown["body"])
    assert "Liberamos el horario" in doc.body_text()
    assert "Sigues en la lista de espera" in doc.body_text()
    assert doc.all("form") == []
    # Harmless again, and the freed cells are bookable by anyone.
    assert page(app, "POST", f"/p/{token}/rechazar")["statusCode"] == 303
    assert book(app, START, who=EVA).status is Status.REQUESTED


def test_accepting_too_late_says_the_offer_expired_and_books_nothing(
    app: App, clock: FixedClock
) -> None:
    entry = offered_to_ana(app)
    assert entry.offer is not None
    token = app.links.offer_token(entry)
    clock.advance(HOLD)
    for method, path in (("POST", f"/p/{token}/aceptar"), ("GET", f"/p/{token}")):
        answer = page(app, method, path)
        assert answer["statusCode"] == 410
        assert "Esta oferta ya venció" in parse(answer["body"]).texts("h1")
        assert answer["headers"] == pages._HEADERS
    assert no_appointment(app, entry.offer.appointment_id)
    # Swept: the slot went back, and the link still books nothing.
    app.for_clinic("sol").sweep_offers()
    assert page(app, "POST", f"/p/{token}/aceptar")["statusCode"] == 410
    assert entry_now(app, entry).status is WaitStatus.WAITING
    assert no_appointment(app, entry.offer.appointment_id)


def test_accepting_after_declining_is_too_late(app: App) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    page(app, "POST", f"/p/{token}/rechazar")
    answer = page(app, "POST", f"/p/{token}/aceptar")
    assert answer["statusCode"] == 410
    assert "Sigues en la lista de espera" in answer["body"]
    assert entry_now(app, entry).status is WaitStatus.WAITING


def test_a_tampered_offer_token_is_a_plain_404_and_actions_of_the_other_kind_too(
    app: App,
) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for method, path in (("GET", f"/p/{tampered}"), ("POST", f"/p/{tampered}/aceptar")):
        answer = page(app, method, path)
        assert answer["statusCode"] == 404
        assert "Dra. Rosa" not in answer["body"] and "Clínica Sol" not in answer["body"]
    # An offer's link confirms nothing; an appointment's link accepts no offer.
    assert page(app, "POST", f"/p/{token}/confirmar")["statusCode"] == 404
    visit = book(app, START + timedelta(days=1), who=EVA)
    assert page(app, "POST", f"/p/{app.links.token(visit)}/aceptar")["statusCode"] == 404
    assert page(app, "GET", f"/p/{token}/aceptar")["statusCode"] == 405
    assert entry_now(app, entry).status is WaitStatus.OFFERED


def test_the_link_of_an_earlier_offer_never_acts_on_a_later_one(
    app: App, clock: FixedClock
) -> None:
    entry = join(app)
    free(app, START, START + timedelta(minutes=30))
    first = refill(app, timedelta(hours=1))
    old = app.links.offer_token(first)
    page(app, "POST", f"/p/{old}/rechazar")
    clock.advance(timedelta(minutes=1))
    second = refill(app, timedelta(hours=1))
    assert second.offer is not None and second.offer.start == START + timedelta(minutes=30)
    # The old link shows only that its offer ended: not the new slot, no buttons.
    shown = page(app, "GET", f"/p/{old}")
    assert shown["statusCode"] == 200
    assert "09:30" not in shown["body"] and parse(shown["body"]).all("form") == []
    assert page(app, "POST", f"/p/{old}/aceptar")["statusCode"] == 410
    assert page(app, "POST", f"/p/{old}/rechazar")["statusCode"] == 303
    now = entry_now(app, entry)
    assert now.status is WaitStatus.OFFERED and now.offer == second.offer
    # The new offer's own link still takes it.
    new = app.links.offer_token(second)
    assert page(app, "POST", f"/p/{new}/aceptar")["statusCode"] == 303
    assert entry_now(app, entry).appointment_id == second.offer.appointment_id


# --- replies ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["SI", "sí", "1", "Confirmo"])
def test_an_sms_yes_takes_the_offer(app: App, text: str) -> None:
    entry = offered_to_ana(app)
    fields = reply(app, text)
    assert (fields["intent"], fields["reply"]) == ("confirm", "offer_accepted")
    booked = entry_now(app, entry)
    assert booked.status is WaitStatus.BOOKED and booked.appointment_id is not None
    appointment = app.for_clinic("sol").get(booked.appointment_id)
    assert appointment.status is Status.CONFIRMED
    link = BASE + app.links.token(appointment)
    assert last_text(app) == (
        f"Clínica Sol: Listo: reservamos tu cita con Dra. Rosa del {WHEN}. Te esperamos. "
        f"Detalle: {link}"
    )
    assert notifier(app).messages[-1].link == link


@pytest.mark.parametrize("text", ["NO", "2", "cancelar"])
def test_an_sms_no_lets_the_offer_go(app: App, text: str) -> None:
    entry = offered_to_ana(app)
    assert reply(app, text)["reply"] == "offer_declined"
    assert last_text(app) == (
        "Clínica Sol: Entendido, liberamos el horario; sigues en la lista de espera."
    )
    assert entry_now(app, entry).status is WaitStatus.WAITING
    assert book(app, START, who=EVA).status is Status.REQUESTED  # the cells are free
    # Answered: a further NO has nothing to apply to.
    assert reply(app, "NO")["reply"] == "nothing_pending"


def test_an_sms_yes_after_the_hold_ran_out_is_told_so_and_books_nothing(
    app: App, clock: FixedClock
) -> None:
    entry = offered_to_ana(app)
    assert entry.offer is not None
    clock.advance(HOLD)
    app.for_clinic("sol").sweep_offers()
    assert reply(app, "SI")["reply"] == "offer_expired"
    assert last_text(app) == (
        "Clínica Sol: Lo sentimos, ese horario ya no está guardado; sigues en la lista de espera."
    )
    assert no_appointment(app, entry.offer.appointment_id)
    assert entry_now(app, entry).status is WaitStatus.WAITING


def test_the_local_inbound_route_takes_the_offer_too(app: App) -> None:
    entry = offered_to_ana(app)
    sent = event(
        "POST",
        "/_local/inbound",
        body=json.dumps({"channel": "sms", "from": ANA.phone, "text": "SI"}),
    )
    sent["requestContext"]["identity"]["apiKeyId"] = app.settings.clinics[0].api_key_id
    answer = make_inbound_handler(app)(sent, None)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["reply"] == "offer_accepted"
    assert entry_now(app, entry).status is WaitStatus.BOOKED


def test_a_live_offer_comes_before_a_visit_awaiting_confirmation(app: App) -> None:
    own = book(app, START + timedelta(days=2), who=ANA)
    deliver(app)  # Ana is asked to confirm her Wednesday visit
    entry = offered_to_ana(app)
    assert reply(app, "SI")["reply"] == "offer_accepted"
    assert entry_now(app, entry).status is WaitStatus.BOOKED
    assert app.for_clinic("sol").get(own.appointment_id).status is Status.REQUESTED
    # The offer answered, the next yes is about the visit still unconfirmed.
    assert reply(app, "SI")["reply"] == "confirmed"
    assert app.for_clinic("sol").get(own.appointment_id).status is Status.CONFIRMED


def test_a_yes_while_busy_at_that_time_books_nothing_and_says_why(app: App) -> None:
    app.for_clinic("sol").register_doctor(RegisterDoctor("dr-paz", "Dr. Paz", "PE", HOURS))
    entry = offered_to_ana(app)
    book(app, START, who=ANA, doctor="dr-paz")  # booked elsewhere meanwhile
    assert reply(app, "SI")["reply"] == "offer_busy"
    assert last_text(app) == (
        f"Clínica Sol: No pudimos reservar el horario con Dra. Rosa del {WHEN}: ya tienes otra "
        "cita a esa hora. Responde NO para dejarlo o llama a la clínica."
    )
    assert entry_now(app, entry).status is WaitStatus.OFFERED
    assert reply(app, "NO")["reply"] == "offer_declined"


def test_anything_else_while_an_offer_is_live_gets_help_about_the_offer(app: App) -> None:
    entry = offered_to_ana(app)
    assert reply(app, "hola")["reply"] == "offer_help"
    link = BASE + app.links.offer_token(entry)
    assert last_text(app) == (
        f"Clínica Sol: No entendimos tu respuesta. Responde SI para tomar el horario con "
        f"Dra. Rosa del {WHEN} o NO para dejarlo, o entra aquí: {link}"
    )
    assert entry_now(app, entry).status is WaitStatus.OFFERED


def test_a_whatsapp_button_takes_the_offer_only_for_its_patient_in_its_clinic(
    app: App,
) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    for sender, clinic in ((LUIS.phone, SOL), (ANA.phone, LUNA)):
        fields = reply(
            app, None, channel="whatsapp", button=f"aceptar:{token}", sender=sender, clinic=clinic
        )
        assert fields["reply"] == "nothing_pending"
        assert entry_now(app, entry).status is WaitStatus.OFFERED
    fields = reply(app, None, channel="whatsapp", button=f"aceptar:{token}")
    assert fields["reply"] == "offer_accepted"
    assert entry_now(app, entry).status is WaitStatus.BOOKED
    # Pressed again: told it is booked, nothing changes.
    assert reply(app, None, channel="whatsapp", button=f"rechazar:{token}")["reply"] == (
        "offer_accepted"
    )
    assert entry_now(app, entry).status is WaitStatus.BOOKED


def test_a_whatsapp_button_of_an_earlier_offer_leaves_the_later_one_alone(
    app: App, clock: FixedClock
) -> None:
    entry = join(app)
    free(app, START, START + timedelta(minutes=30))
    old = app.links.offer_token(refill(app, timedelta(hours=1)))
    app.for_clinic("sol").decline_offer(entry.waitlist_id)
    clock.advance(timedelta(minutes=1))
    second = refill(app, timedelta(hours=1))
    assert reply(app, None, channel="whatsapp", button=f"aceptar:{old}")["reply"] == (
        "offer_expired"
    )
    assert entry_now(app, entry).offer == second.offer


# --- the offer page as HTML --------------------------------------------------------------------

OFFER_VIEW = pages.pages.OfferView(
    clinic_name="Clínica Sol",
    doctor_name="Dra. Rosa",
    when=WHEN,
    until="las 12:30",
    live=True,
    waiting=True,
    notice=None,
    token="tok_AbC-123",
)
HOSTILE = "<script>alert(1)</script>&\"'"


@pytest.mark.parametrize(
    "html",
    [
        pages.pages.render_offer(OFFER_VIEW),
        pages.pages.render_offer(attrs.evolve(OFFER_VIEW, live=False, notice="rechazada")),
        pages.pages.render_offer_gone("Clínica Sol", waiting=True),
        pages.pages.render_offer_gone(None, waiting=False),
    ],
    ids=["live", "ended", "gone", "gone_unknown_clinic"],
)
def test_every_offer_page_is_spanish_mobile_one_h1_and_loads_nothing(html: str) -> None:
    doc = parse(html)
    assert html.startswith("<!doctype html>")
    assert doc.all("html")[0].attrs["lang"] == "es"
    assert len(doc.all("h1")) == 1 and doc.texts("title") != [""]
    assert FOOTER in doc.texts("footer")[0]
    for tag in ("script", "link", "img", "iframe", "input"):
        assert doc.all(tag) == [], tag
    assert not any(
        k.startswith("on") or k in ("src", "href") for e in doc.elements for k in e.attrs
    )
    assert " usted" not in doc.body_text().lower()


@pytest.mark.parametrize("code", sorted(pages.pages.OFFER_NOTICES))
def test_every_offer_notice_is_a_spanish_status_message(code: str) -> None:
    doc = parse(pages.pages.render_offer(attrs.evolve(OFFER_VIEW, notice=code)))
    statuses = [e for e in doc.elements if e.attrs.get("role") == "status"]
    sentence = pages.pages.OFFER_NOTICES[code]
    assert [" ".join(e.text.split()) for e in statuses] == [sentence]
    assert sentence[0].isupper() and sentence[-1] == "." and "_" not in sentence


def test_an_unknown_offer_notice_is_refused_when_the_view_is_built() -> None:
    with pytest.raises(ValueError):
        attrs.evolve(OFFER_VIEW, notice="confirmada")


def test_hostile_names_on_the_offer_page_come_out_escaped() -> None:
    html = pages.pages.render_offer(
        attrs.evolve(OFFER_VIEW, clinic_name=HOSTILE, doctor_name=HOSTILE, token='a"b<c')
    )
    doc = parse(html)
    assert "<script>" not in html and doc.all("script") == []
    assert doc.texts("h1") == [HOSTILE]
    assert doc.all("form")[0].attrs["action"] == 'a"b<c/aceptar'


def test_an_offer_whatsapp_could_not_deliver_goes_by_sms_while_it_is_live(
    clock: FixedClock,
) -> None:
    app = make_app(clock, attrs.evolve(SOL, channels=("whatsapp",)))
    entry = offered_to_ana(app)
    sent = notifier(app).messages[-1]
    assert sent.template == "citas_oferta"
    # The memory notifier numbers what it sends: the offer is the last WhatsApp message.
    message_id = f"whatsapp-{len(notifier(app).messages)}"
    record = app.messenger.sent.find(message_id)
    assert record is not None and record.kind == "offer"
    failure = DeliveryFailure(channel="whatsapp", message_id=message_id, recipient=ANA.phone)
    assert app.messenger.fall_back(failure)
    sms = notifier(app).messages[-1]
    assert (sms.channel, sms.text, sms.phone) == ("sms", sent.text, ANA.phone)
    # Once the offer is over, its message no longer holds: no SMS for it.
    app.for_clinic("sol").decline_offer(entry.waitlist_id)
    app.messenger.sent.remember("whatsapp-late", record)
    assert not app.messenger.fall_back(attrs.evolve(failure, message_id="whatsapp-late"))


def test_a_yes_long_after_an_offer_ran_out_is_about_the_visits_again(
    app: App, clock: FixedClock
) -> None:
    own = book(app, START + timedelta(days=2), who=ANA)
    deliver(app)
    offered_to_ana(app)
    clock.advance(HOLD)  # run out, not swept yet: still too late
    assert reply(app, "SI")["reply"] == "offer_expired"
    assert app.for_clinic("sol").get(own.appointment_id).status is Status.REQUESTED
    assert reply(app, "SI")["reply"] == "confirmed"  # the offer was answered

    later = FixedClock(NOW)
    other = make_app(later)
    mine = book(other, START + timedelta(days=2), who=ANA)
    deliver(other)
    offered_to_ana(other)
    later.advance(HOLD + timedelta(hours=2))
    assert reply(other, "SI")["reply"] == "confirmed"
    assert other.for_clinic("sol").get(mine.appointment_id).status is Status.CONFIRMED


def test_an_accept_the_doctors_new_hours_refuse_says_so_and_books_nothing(app: App) -> None:
    entry = offered_to_ana(app)
    token = app.links.offer_token(entry)
    # Dra. Rosa now starts at 10:00: the held 09:00 no longer passes the booking rules.
    later = {d: [["10:00", "13:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    app.for_clinic("sol").register_doctor(RegisterDoctor("dra-rosa", "Dra. Rosa", "PE", later))
    answer = page(app, "POST", f"/p/{token}/aceptar")
    assert answer["headers"]["Location"] == f"../{token}?aviso=outside_working_hours"
    shown = page(app, "GET", f"/p/{token}?aviso=outside_working_hours")
    assert shown["statusCode"] == 200
    assert "Ya no podemos reservar este horario." in shown["body"]
    assert entry_now(app, entry).status is WaitStatus.OFFERED
