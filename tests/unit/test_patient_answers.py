"""The patient answers: their page behind the link, and replies by SMS and WhatsApp.

Both run on the memory backend with a fixed clock, through the entrypoints a deployment runs:
the pages' Lambda handler (API Gateway proxy events without an API key) and the inbound
handlers, with the same use cases behind them.
"""

from __future__ import annotations

import importlib
import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from adapters.memory.store import InMemoryNotifier
from adapters.system import FixedClock
from domain.appointment import Appointment, Status
from domain.clinics import ClinicProfile, clinic_for_recipient
from domain.commands import BookAppointment, CancelAppointment, RegisterDoctor
from domain.errors import TemporarilyUnavailable
from domain.patient import Patient
from domain.replies import InboundMessage
from entrypoints.bootstrap import App, build_app
from entrypoints.config import LocalClinic, Settings
from entrypoints.consumers import sns_handler
from entrypoints.context import LocalContext
from entrypoints.local.inbound import make_inbound_handler
from entrypoints.messages import inbound_sms, inbound_whatsapp, reply_to
from tests.unit.apigw import event

pages = importlib.import_module("entrypoints.lambda.patient_pages")

# Tuesday 2030-01-01 12:00 in Lima; the visit is Monday 2030-01-07 09:00 (-05).
NOW = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
START = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)
HOURS = {d: [["09:00", "13:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
ANA = Patient("Ana Pérez", "+51987654321")
SOL = ClinicProfile("sol", "Clínica Sol")
LUNA = ClinicProfile("luna", "Clínica Luna")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def app(clock: FixedClock) -> App:
    settings = Settings(
        notifier="memory",
        clinics=(LocalClinic(SOL, "sol-key-123"), LocalClinic(LUNA, "luna-key-123")),
        public_base_url="https://citas.example",
    )
    built = build_app(settings, clock=clock)
    for clinic in ("sol", "luna"):
        built.for_clinic(clinic).register_doctor(
            RegisterDoctor("dra-rosa", "Dra. Rosa", "PE", HOURS)
        )
    return built


def book(app: App, start: datetime = START, clinic: str = "sol", who: Patient = ANA) -> Appointment:
    return app.for_clinic(clinic).book(BookAppointment("dra-rosa", who, start, None))


def token_of(app: App, appointment: Appointment) -> str:
    return app.links.token(appointment)


def page(app: App, method: str, path: str, form: dict[str, str] | None = None) -> dict[str, Any]:
    body = urllib.parse.urlencode(form) if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form is not None else {}
    path, _, query = path.partition("?")
    response: dict[str, Any] = pages.make_handler(lambda: app)(
        event(
            method,
            path,
            body=body,
            headers=headers,
            query=dict(urllib.parse.parse_qsl(query)),
            api_key=None,
        )
    )
    assert "Traceback" not in response["body"]
    return response


def status_of(app: App, appointment: Appointment, clinic: str = "sol") -> Status:
    return app.for_clinic(clinic).get(appointment.appointment_id).status


def notifier(app: App) -> InMemoryNotifier:
    found = app.messenger.notifier
    assert isinstance(found, InMemoryNotifier)
    return found


# --- the page -------------------------------------------------------------------------------


def test_the_page_shows_the_visit_in_the_clinics_time_and_stays_out_of_caches(app: App) -> None:
    appointment = book(app)
    response = page(app, "GET", f"/p/{token_of(app, appointment)}")
    assert response["statusCode"] == 200
    html = response["body"]
    assert "Clínica Sol" in html and "Dra. Rosa" in html
    assert "lunes 7 de enero, 09:00 (hora de Lima)" in html
    assert "Ana" not in html and ANA.phone not in html
    headers = response["headers"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_confirming_redirects_to_the_page_and_a_repeat_is_harmless(app: App) -> None:
    appointment = book(app)
    token = token_of(app, appointment)
    first = page(app, "POST", f"/p/{token}/confirmar", {})
    assert first["statusCode"] == 303
    assert first["headers"]["Location"] == f"../{token}?aviso=confirmada"
    assert status_of(app, appointment) is Status.CONFIRMED
    again = page(app, "POST", f"/p/{token}/confirmar", {})
    assert again["headers"]["Location"].endswith("aviso=ya_confirmada")
    shown = page(app, "GET", f"/p/{token}?aviso=confirmada")
    assert shown["statusCode"] == 200
    assert pages.pages.NOTICES["confirmada"] in shown["body"]
    # A notice that is not one of ours shows nothing (and never echoes the text).
    odd = page(app, "GET", f"/p/{token}?aviso=<b>hola</b>")
    assert odd["statusCode"] == 200 and "<b>hola" not in odd["body"]


def test_rescheduling_moves_to_a_free_slot_and_refuses_a_taken_one(app: App) -> None:
    appointment = book(app)
    taken = book(app, START + timedelta(hours=1), who=Patient("Luis", "+51911222333"))
    token = token_of(app, appointment)
    # The page offers the free slots, and not the taken one.
    html = page(app, "GET", f"/p/{token}")["body"]
    assert 'value="2030-01-07T09:30:00-05:00"' in html
    assert 'value="2030-01-07T10:00:00-05:00"' not in html

    refused = page(app, "POST", f"/p/{token}/reprogramar", {"start": "2030-01-07T10:00:00-05:00"})
    assert refused["headers"]["Location"].endswith("aviso=slot_unavailable")
    assert app.for_clinic("sol").get(appointment.appointment_id).start == START
    assert status_of(app, taken) is Status.REQUESTED

    moved = page(app, "POST", f"/p/{token}/reprogramar", {"start": "2030-01-07T09:30:00-05:00"})
    assert moved["headers"]["Location"].endswith("aviso=reprogramada")
    # Back to the link of the new time: it expires when the visit now starts.
    new_token = moved["headers"]["Location"].partition("?")[0].removeprefix("../")
    assert new_token != token
    assert "09:30 (hora de Lima)" in page(app, "GET", f"/p/{new_token}")["body"]
    assert app.for_clinic("sol").get(appointment.appointment_id).start == START + timedelta(
        minutes=30
    )


@pytest.mark.parametrize("start", [None, "", "mañana", "2030-01-07T09:30:00", "x" * 100])
def test_a_bad_time_in_the_form_changes_nothing(app: App, start: str | None) -> None:
    appointment = book(app)
    form = {} if start is None else {"start": start}
    answer = page(app, "POST", f"/p/{token_of(app, appointment)}/reprogramar", form)
    assert answer["headers"]["Location"].endswith("aviso=invalid_start")
    assert app.for_clinic("sol").get(appointment.appointment_id).version == 1


def test_cancelling_leaves_a_page_without_actions(app: App) -> None:
    appointment = book(app)
    token = token_of(app, appointment)
    assert page(app, "POST", f"/p/{token}/cancelar", {})["statusCode"] == 303
    assert page(app, "POST", f"/p/{token}/cancelar", {})["statusCode"] == 303  # harmless repeat
    assert status_of(app, appointment) is Status.CANCELLED
    html = page(app, "GET", f"/p/{token}")["body"]
    assert "<form" not in html
    # A cancelled appointment cannot be confirmed from its link.
    answer = page(app, "POST", f"/p/{token}/confirmar", {})
    assert answer["headers"]["Location"].endswith("aviso=invalid_transition")
    assert status_of(app, appointment) is Status.CANCELLED


def test_a_tampered_token_is_a_plain_404_and_changes_nothing(app: App) -> None:
    appointment = book(app)
    token = token_of(app, appointment)
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for method, path in (("GET", f"/p/{tampered}"), ("POST", f"/p/{tampered}/cancelar")):
        answer = page(app, method, path, {} if method == "POST" else None)
        assert answer["statusCode"] == 404
        assert "Dra. Rosa" not in answer["body"] and "Clínica Sol" not in answer["body"]
    assert status_of(app, appointment) is Status.REQUESTED


@pytest.mark.parametrize(
    "path",
    ["/p/", "/p/abc", "/p/" + "A" * 400, "/p/%3Cscript%3E", "/p/AAAA/borrar", "/p/AAAA/x/y"],
)
def test_paths_that_are_no_link_are_404_never_an_error(app: App, path: str) -> None:
    assert page(app, "GET", path)["statusCode"] == 404


def test_an_expired_link_says_so(app: App, clock: FixedClock) -> None:
    appointment = book(app)
    token = token_of(app, appointment)
    clock.set(START)
    answer = page(app, "GET", f"/p/{token}")
    assert answer["statusCode"] == 410
    assert "venció" in answer["body"] or "vencido" in answer["body"]
    assert page(app, "POST", f"/p/{token}/confirmar", {})["statusCode"] == 410
    assert status_of(app, appointment) is Status.REQUESTED


def test_a_link_of_another_clinic_names_nothing_here(app: App) -> None:
    appointment = book(app, clinic="luna")
    token = token_of(app, appointment)
    served_elsewhere = build_app(
        attrs.evolve(app.settings, clinics=(LocalClinic(SOL, "sol-key-123"),)),
        clock=FixedClock(NOW),
    )
    answer = pages.make_handler(lambda: served_elsewhere)(event("GET", f"/p/{token}", api_key=None))
    assert answer["statusCode"] == 404


def test_a_get_on_an_action_or_a_post_on_the_page_is_405(app: App) -> None:
    token = token_of(app, book(app))
    assert page(app, "GET", f"/p/{token}/confirmar")["statusCode"] == 405
    assert page(app, "POST", f"/p/{token}", {})["statusCode"] == 405


# --- replies --------------------------------------------------------------------------------


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


def asked(app: App, appointment: Appointment) -> None:
    """Deliver the booking's message, which asks the patient to answer."""
    for e in app.outbox.pending(100):
        app.messenger.handle(e)


@pytest.mark.parametrize(
    "text", ["SI", "sí", " Sí ", "si!", "1", "confirmo", "CONFIRMAR", "Sí, confirmo", "SI SI"]
)
def test_every_yes_confirms_the_next_appointment_awaiting_an_answer(app: App, text: str) -> None:
    appointment = book(app)
    asked(app, appointment)
    fields = reply(app, text)
    assert (fields["intent"], fields["reply"]) == ("confirm", "confirmed")
    assert status_of(app, appointment) is Status.CONFIRMED
    answer = notifier(app).messages[-1]
    assert answer.text.startswith("Clínica Sol: ¡Gracias! Tu cita con Dra. Rosa del lunes 7")
    assert answer.link is not None and answer.text.endswith(answer.link)


@pytest.mark.parametrize("text", ["NO", "no", "2", "Cancelar", " cancelo "])
def test_every_no_cancels(app: App, text: str) -> None:
    appointment = book(app)
    asked(app, appointment)
    assert reply(app, text)["reply"] == "cancelled"
    assert status_of(app, appointment) is Status.CANCELLED
    # Nothing awaits an answer any more.
    assert reply(app, "SI")["reply"] == "nothing_pending"


def test_the_answer_goes_to_the_next_visit_not_a_later_one(app: App) -> None:
    later = book(app, START + timedelta(days=1))
    sooner = book(app, START)
    asked(app, later)
    reply(app, "SI")
    assert status_of(app, sooner) is Status.CONFIRMED
    assert status_of(app, later) is Status.REQUESTED
    # A yes answers the soonest visit still waiting for one: now the later one.
    assert reply(app, "SI")["reply"] == "confirmed"
    assert status_of(app, later) is Status.CONFIRMED
    assert reply(app, "SI")["reply"] == "already_confirmed"
    # A no still cancels the soonest: a confirmed visit takes a no.
    assert reply(app, "NO")["reply"] == "cancelled"
    assert status_of(app, sooner) is Status.CANCELLED
    assert status_of(app, later) is Status.CONFIRMED


def test_an_answer_applies_only_within_the_clinic_that_wrote(app: App) -> None:
    in_luna = book(app, clinic="luna")
    asked(app, in_luna)
    fields = reply(app, "NO", clinic=SOL)
    assert fields["reply"] == "nothing_pending"
    assert status_of(app, in_luna, "luna") is Status.REQUESTED


@pytest.mark.parametrize(
    "text", ["hola", "", "¿a qué hora?", "x" * 5000, "si no", "\u200b", "sí, pero"]
)
def test_anything_else_gets_one_help_reply_and_changes_nothing(app: App, text: str) -> None:
    appointment = book(app)
    asked(app, appointment)
    before = len(notifier(app).messages)
    fields = reply(app, text)
    assert fields["reply"] == "help"
    assert status_of(app, appointment) is Status.REQUESTED
    assert len(notifier(app).messages) == before + 1
    assert notifier(app).messages[-1].link is not None


def test_an_unknown_phone_gets_help_without_a_link(app: App) -> None:
    fields = reply(app, "SI", sender="+51900000000")
    assert fields["reply"] == "nothing_pending"
    assert notifier(app).messages[-1].link is None


def test_a_replayed_message_is_handled_once(app: App) -> None:
    appointment = book(app)
    asked(app, appointment)
    assert reply(app, "NO", message_id="wamid.1")["reply"] == "cancelled"
    sent = len(notifier(app).messages)
    fields = reply(app, "NO", message_id="wamid.1")
    assert fields["duplicate"] is True
    assert len(notifier(app).messages) == sent


def test_a_retry_after_a_failed_answer_does_not_cancel_the_next_visit(app: App) -> None:
    first = book(app)
    second = book(app, START + timedelta(days=1))
    asked(app, first)
    real = notifier(app).send
    calls = {"n": 0}

    def throttled_once(message: Any) -> str | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TemporarilyUnavailable("sms is throttling", service="sms")
        return real(message)

    notifier(app).send = throttled_once  # type: ignore[method-assign]
    fields = reply(app, "NO", message_id="sms-1")
    assert fields["reply"] == "cancelled" and fields.get("reply_failed") is True
    # The channel redelivers the same message: it was handled, nothing more is cancelled.
    assert reply(app, "NO", message_id="sms-1")["duplicate"] is True
    assert status_of(app, first) is Status.CANCELLED
    assert status_of(app, second) is Status.REQUESTED


def test_baja_opts_the_phone_out_everywhere_until_alta(app: App) -> None:
    appointment = book(app)
    asked(app, appointment)
    assert reply(app, "BAJA")["reply"] == "opted_out"
    assert reply(app, "stop")["reply"] == "opted_out"  # again: no second event
    events = [e for e in app.outbox.pending(100) if e.type == "PatientOptedOut"]
    assert len(events) == 1 and events[0].data == {"patient_key": ANA.key}
    assert ANA.phone not in json.dumps(events[0].to_envelope())
    # No message of any kind reaches the phone now; an answer still applies, silently.
    sent = len(notifier(app).messages)
    app.for_clinic("sol").cancel(CancelAppointment(appointment.appointment_id))
    second = book(app, START + timedelta(days=1))
    for e in app.outbox.pending(100):
        app.messenger.handle(e)
    assert reply(app, "SI")["replied"] is False
    assert len(notifier(app).messages) == sent
    # Another clinic's messages still go: the opt-out is per clinic.
    book(app, clinic="luna")
    for e in app.outbox.pending(100):
        app.messenger.handle(e)
    assert notifier(app).messages[-1].clinic_id == "luna"
    assert reply(app, "ALTA")["reply"] == "opted_in"
    assert status_of(app, second) is Status.REQUESTED


def test_a_whatsapp_button_names_its_appointment_by_token(app: App) -> None:
    first = book(app)
    second = book(app, START + timedelta(days=1))
    token = token_of(app, second)
    fields = reply(app, None, channel="whatsapp", button=f"cancelar:{token}")
    assert fields["appointment_id"] == second.appointment_id
    assert status_of(app, second) is Status.CANCELLED
    assert status_of(app, first) is Status.REQUESTED
    assert notifier(app).messages[-1].channel == "whatsapp"


@pytest.mark.parametrize("button", ["cancelar:", "cancelar:AAAA", "borrar:{token}", "{token}"])
def test_a_button_that_is_not_ours_changes_nothing(app: App, button: str) -> None:
    appointment = book(app)
    payload = button.format(token=token_of(app, appointment))
    reply(app, None, channel="whatsapp", button=payload)
    assert status_of(app, appointment) is Status.REQUESTED


def test_a_button_pressed_by_another_phone_or_for_another_clinic_changes_nothing(
    app: App,
) -> None:
    appointment = book(app)
    token = token_of(app, appointment)
    reply(app, None, channel="whatsapp", button=f"cancelar:{token}", sender="+51900000001")
    reply(app, None, channel="whatsapp", button=f"cancelar:{token}", clinic=LUNA)
    assert status_of(app, appointment) is Status.REQUESTED


# --- POST /_local/inbound -------------------------------------------------------------------


def inbound(app: App, body: object, key_id: str | None = None) -> dict[str, Any]:
    handler = make_inbound_handler(app)
    raw = body if isinstance(body, str) else json.dumps(body)
    sent = event("POST", "/_local/inbound", body=raw)
    sent["requestContext"]["identity"]["apiKeyId"] = key_id or app.settings.clinics[0].api_key_id
    return handler(sent)


def test_the_local_inbound_route_feeds_the_same_replies(app: App) -> None:
    appointment = book(app)
    asked(app, appointment)
    answer = inbound(app, {"channel": "sms", "from": ANA.phone, "text": "SI"})
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["reply"] == "confirmed"
    assert status_of(app, appointment) is Status.CONFIRMED


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        {"channel": "fax", "from": ANA.phone, "text": "SI"},
        {"channel": "sms", "from": "987654321", "text": "SI"},
        {"channel": "sms", "from": ANA.phone},
        {"channel": "sms", "from": ANA.phone, "text": "SI", "button": "x"},
        {"channel": "sms", "from": ANA.phone, "text": 1},
        {"channel": "sms", "from": ANA.phone, "text": "SI", "extra": True},
        {"channel": "sms", "from": ANA.phone, "text": "SI", "message_id": ""},
        {"channel": "sms", "from": ANA.phone, "text": "x" * 20000},
    ],
)
def test_bad_inbound_input_is_a_400_and_changes_nothing(app: App, body: object) -> None:
    appointment = book(app)
    asked(app, appointment)
    answer = inbound(app, body)
    assert answer["statusCode"] == 400
    assert set(json.loads(answer["body"])["error"]) == {"code", "message", "details"}
    assert status_of(app, appointment) is Status.REQUESTED


def test_the_local_inbound_route_needs_a_clinics_key(app: App) -> None:
    answer = inbound(app, {"channel": "sms", "from": ANA.phone, "text": "SI"}, key_id="nobody")
    assert answer["statusCode"] == 403


# --- the inbound functions, fed AWS's documented SNS events ----------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
# The clinic's numbers in the fixtures: the SMS destination, the WhatsApp phone number id.
SOL_NUMBERS = attrs.evolve(
    SOL,
    channels=("whatsapp", "sms"),
    sms_number="+51912345678",
    whatsapp_phone_number_id="phone-number-id-976c72a700aac43eaf573ae050example",
)


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    loaded.pop("_source")
    return loaded


@pytest.fixture
def numbered(clock: FixedClock) -> App:
    settings = Settings(
        notifier="memory",
        clinics=(LocalClinic(SOL_NUMBERS, "sol-key-123"), LocalClinic(LUNA, "luna-key-123")),
    )
    built = build_app(settings, clock=clock)
    built.for_clinic("sol").register_doctor(RegisterDoctor("dra-rosa", "Dra. Rosa", "PE", HOURS))
    return built


def test_the_sms_function_applies_a_documented_two_way_sms_once(numbered: App) -> None:
    appointment = book(numbered)
    asked(numbered, appointment)
    handler = sns_handler(lambda: numbered, inbound_sms, failure_metric="InboundFailures")
    sms = fixture("lambda_sns_sms.json")
    assert handler(sms, LocalContext()) == {"handled": 1}
    assert status_of(numbered, appointment) is Status.CONFIRMED
    replies = [m for m in notifier(numbered).messages if m.appointment_id and m.channel == "sms"]
    assert replies[-1].text.startswith("Clínica Sol: ¡Gracias!")
    # SNS delivers at least once: the same message again changes and sends nothing.
    sent = len(notifier(numbered).messages)
    assert handler(sms, LocalContext()) == {"handled": 1}
    assert len(notifier(numbered).messages) == sent


def test_the_whatsapp_function_applies_a_documented_message(numbered: App) -> None:
    patient = Patient("Sheena", "+16505551234")
    appointment = book(numbered, who=patient)
    asked(numbered, appointment)
    handler = sns_handler(lambda: numbered, inbound_whatsapp, failure_metric="InboundFailures")
    assert handler(fixture("lambda_sns_whatsapp.json"), LocalContext()) == {"handled": 1}
    assert status_of(numbered, appointment) is Status.CONFIRMED
    answer = notifier(numbered).messages[-1]
    assert (answer.channel, answer.template) == ("whatsapp", None)  # a plain-text reply


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "{}",
        json.dumps({"originationNumber": "51987654321", "messageBody": "SI"}),
        json.dumps({"whatsAppWebhookEntry": "{"}),
    ],
)
def test_a_forged_or_malformed_record_is_dropped_and_changes_nothing(
    numbered: App, message: str
) -> None:
    appointment = book(numbered)
    asked(numbered, appointment)
    event = fixture("lambda_sns_sms.json")
    event["Records"][0]["Sns"]["Message"] = message
    for handle in (inbound_sms, inbound_whatsapp):
        handler = sns_handler(lambda: numbered, handle, failure_metric="InboundFailures")
        assert handler(event, LocalContext()) == {"handled": 0}
    assert handler({"Records": "no"}, LocalContext()) == {"handled": 0}
    assert status_of(numbered, appointment) is Status.REQUESTED


def test_an_sms_to_a_number_of_no_clinic_is_dropped(numbered: App) -> None:
    appointment = book(numbered)
    asked(numbered, appointment)
    event = fixture("lambda_sns_sms.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["destinationNumber"] = "+51999999999"
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    handler = sns_handler(lambda: numbered, inbound_sms, failure_metric="InboundFailures")
    assert handler(event, LocalContext()) == {"handled": 1}
    assert status_of(numbered, appointment) is Status.REQUESTED


def test_an_inbound_message_finds_its_clinic_by_the_number_it_was_sent_to() -> None:
    number_id = "phone-number-id-976c72a700aac43eaf573ae050example"
    arn = "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/976c72a700aac43e"
    by_id = attrs.evolve(SOL, sms_number="+51912345678", whatsapp_phone_number_id=number_id)
    by_arn = attrs.evolve(LUNA, whatsapp_phone_number_id=arn)
    clinics = [by_id, by_arn]
    assert clinic_for_recipient(clinics, "sms", "+51912345678") == by_id
    assert clinic_for_recipient(clinics, "whatsapp", number_id) == by_id
    # Terraform takes a number either way; the inbound event names it as an id.
    assert clinic_for_recipient(clinics, "whatsapp", "phone-number-id-976c72a700aac43e") == by_arn
    assert clinic_for_recipient(clinics, "sms", "+51999999999") is None
    assert clinic_for_recipient(clinics, "whatsapp", None) is None
    # One clinic naming no number answers for the deployment's default one.
    assert clinic_for_recipient([SOL], "sms", "+51999999999") == SOL
    assert clinic_for_recipient([by_id], "sms", "+51999999999") is None


def test_the_local_inbound_route_takes_only_post(app: App) -> None:
    sent = event("GET", "/_local/inbound")
    sent["requestContext"]["identity"]["apiKeyId"] = app.settings.clinics[0].api_key_id
    answer = make_inbound_handler(app)(sent)
    assert answer["statusCode"] == 405
    assert json.loads(answer["body"])["error"]["code"] == "method_not_allowed"
