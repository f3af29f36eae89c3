"""The HTTP API of the waitlist on the memory backend: joining, reading, listing, leaving, and
the offers of freed time accepted, declined or run out."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.system import FixedClock
from domain import events as ev
from domain.clinics import ClinicProfile
from entrypoints.bootstrap import App, build_app
from entrypoints.config import LocalClinic, Settings
from tests.unit.apigw import event
from tests.unit.http_world import (
    ANA,
    LIMA_DOCTOR,
    LUIS,
    MON,
    NOW,
    SLOT,
    UNKNOWN_ID,
    Api,
    booking,
    handler,
    http_api,
    the_clinic,
)

# Most requests book nothing and so flush no metric; Powertools warns about that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TUE = "2030-01-08"
NINE = f"{MON}T09:00:00-05:00"
NINE_THIRTY = f"{MON}T09:30:00-05:00"
ENTRY_KEYS = {
    "waitlist_id",
    "doctor_id",
    "patient",
    "from",
    "to",
    "duration_minutes",
    "status",
    "created_at",
    "updated_at",
}


def joining(**extra: Any) -> dict[str, Any]:
    return {"doctor_id": "dr-lima", "patient": ANA, "from": MON, "to": TUE, **extra}


def join(api: Api, **extra: Any) -> dict[str, Any]:
    reply = api.post("/waitlist", joining(**extra))
    assert reply.status == 201, reply.text
    return dict(reply.json)


def entries(api: Api, doctor: str = "dr-lima") -> list[dict[str, Any]]:
    reply = api.get("/waitlist", query={"doctor_id": doctor, "limit": "100"})
    assert reply.status == 200
    assert reply.json["next_token"] is None
    return list(reply.json["items"])


def free_slots(api: Api, day: str = MON) -> list[str]:
    reply = api.get("/doctors/dr-lima/availability", query={"date": day})
    assert reply.status == 200
    return [s["start"] for s in reply.json["slots"]]


# Joining and reading ----------------------------------------------------------------------


def test_joining_answers_201_with_location_and_the_waiting_entry(api: Api) -> None:
    reply = api.post("/waitlist", joining())
    assert reply.status == 201
    entry = reply.json
    assert set(entry) == ENTRY_KEYS
    assert reply.header("Location") == f"/waitlist/{entry['waitlist_id']}"
    assert entry["doctor_id"] == "dr-lima"
    assert entry["patient"] == ANA
    assert (entry["from"], entry["to"]) == (MON, TUE)
    assert entry["duration_minutes"] == 30  # one of the doctor's slots
    assert entry["status"] == "waiting"
    # In the doctor's local time, with its offset.
    assert entry["created_at"] == "2030-01-01T12:00:00-05:00" == entry["updated_at"]
    assert api.get(f"/waitlist/{entry['waitlist_id']}").json == entry
    assert api.get(f"/waitlist/{entry['waitlist_id'].upper()}").json == entry


def test_the_window_and_duration_are_kept_and_shown(api: Api) -> None:
    entry = join(api, earliest="09:00", latest="12:30", duration_minutes=60)
    assert (entry["earliest"], entry["latest"], entry["duration_minutes"]) == ("09:00", "12:30", 60)
    patient = {"name": LUIS["name"], "phone": LUIS["phone"]}
    entry = join(api, patient=patient, to=MON)
    assert entry["patient"] == patient and "earliest" not in entry and "latest" not in entry


def test_a_range_of_exactly_sixty_days_and_one_from_today_are_accepted(api: Api) -> None:
    join(api, **{"from": "2030-01-01", "to": "2030-03-02"})  # today in Lima; 60 days


def test_an_entry_whose_range_passed_shows_expired(api: Api, clock: FixedClock) -> None:
    entry = join(api, to=MON)
    clock.advance(timedelta(days=7))  # Tuesday noon UTC: Monday is over in Lima
    assert api.get(f"/waitlist/{entry['waitlist_id']}").json["status"] == "expired"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"clinic_id": "demo"}, "clinic_id"),
        ({"start": NINE}, "start"),
        ({"doctor_id": None}, "doctor_id"),
        ({"doctor_id": "dr lima"}, "doctor_id"),
        ({"from": "2030-1-7"}, "from"),
        ({"from": "2030-02-30"}, "from"),
        ({"from": NINE}, "from"),
        ({"to": 20300108}, "to"),
        ({"earliest": "9:00"}, "earliest"),
        ({"earliest": "24:00"}, "earliest"),
        ({"earliest": "09:00:00"}, "earliest"),
        ({"earliest": "\uff10\uff19:\uff10\uff10"}, "earliest"),  # fullwidth digits
        ({"earliest": None}, "earliest"),
        ({"latest": "12:60"}, "latest"),
        ({"latest": 1200}, "latest"),
        ({"duration_minutes": True}, "duration_minutes"),
        ({"duration_minutes": 30.0}, "duration_minutes"),
        ({"duration_minutes": "30"}, "duration_minutes"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": 270}, "duration_minutes"),
        ({"patient": "Ana"}, "patient"),
        ({"patient": {"name": "Ana"}}, "patient.phone"),
        ({"patient": {**ANA, "email": "a@b.pe"}}, "patient.email"),
        ({"patient": {**ANA, "phone": 51987654321}}, "patient.phone"),
        ({"patient": {**ANA, "phone": "987654321"}}, "patient.phone"),
    ],
)
def test_a_malformed_body_is_400_naming_the_field_and_stores_nothing(
    api: Api, change: dict[str, Any], field: str
) -> None:
    reply = api.post("/waitlist", joining() | change)
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == field
    assert entries(api) == []


@pytest.mark.parametrize("missing", ["doctor_id", "patient", "from", "to"])
def test_a_missing_field_is_400(api: Api, missing: str) -> None:
    body = joining()
    del body[missing]
    reply = api.post("/waitlist", body)
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, missing)
    assert entries(api) == []


@pytest.mark.parametrize("body", [None, "", "not json", "[]", '{"doctor_id": "a", "doctor_id": 1}'])
def test_a_body_that_is_not_one_json_object_is_400(api: Api, body: str | None) -> None:
    reply = api.post("/waitlist", body)
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert entries(api) == []


def test_a_query_parameter_on_join_is_400(api: Api) -> None:
    reply = api.post("/waitlist", joining(), query={"doctor_id": "dr-lima"})
    assert (reply.status, reply.error_code) == (400, "validation_error")


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        # Yesterday in Lima (it is Tuesday 2030-01-01 noon there).
        ({"from": "2029-12-31"}, 422, "start_in_past"),
        ({"to": "2030-03-09"}, 400, "validation_error"),  # 61 days after `from`
        ({"to": "2030-01-06"}, 400, "validation_error"),  # before `from`
        ({"earliest": "12:00", "latest": "12:00"}, 400, "validation_error"),
        ({"earliest": "12:00", "latest": "09:00"}, 400, "validation_error"),
        ({"earliest": "12:00", "latest": "12:20"}, 400, "validation_error"),  # shorter than a visit
        ({"duration_minutes": 45}, 422, "invalid_slot"),  # not a multiple of 30
        ({"from": "2030-04-15", "to": "2030-04-20"}, 422, "too_far"),  # horizon: 90 days
        ({"doctor_id": "dr-nobody"}, 404, "not_found"),
    ],
)
def test_a_range_or_rule_the_contract_refuses_is_answered_and_stores_nothing(
    api: Api, change: dict[str, Any], status: int, code: str
) -> None:
    reply = api.post("/waitlist", joining(**change))
    assert (reply.status, reply.error_code) == (status, code)
    assert entries(api) == []


def test_a_slot_length_is_the_doctors_own(api: Api) -> None:
    # dr-scl has 20-minute slots: 40 is two of them, 30 is none.
    assert join(api, doctor_id="dr-scl", duration_minutes=40)["duration_minutes"] == 40
    reply = api.post("/waitlist", joining(doctor_id="dr-scl", duration_minutes=30))
    assert (reply.status, reply.error_code) == (422, "invalid_slot")
    assert join(api, doctor_id="dr-scl")["duration_minutes"] == 20


# Ids and unknown entries ------------------------------------------------------------------


def _every_entry_route(api: Api, path: str) -> list[Any]:
    return [
        api.get(path),
        api.delete(path),
        api.post(path + "/accept"),
        api.post(path + "/decline"),
    ]


@pytest.mark.parametrize("path", ["/waitlist/42", "/waitlist/not-a-uuid"])
def test_a_malformed_waitlist_id_is_400(api: Api, path: str) -> None:
    for reply in _every_entry_route(api, path):
        assert (reply.status, reply.error_code) == (400, "validation_error")
        assert reply.json["error"]["details"]["field"] == "waitlist_id"


def test_an_unknown_waitlist_id_is_404(api: Api) -> None:
    for reply in _every_entry_route(api, f"/waitlist/{UNKNOWN_ID}"):
        assert (reply.status, reply.error_code) == (404, "not_found")


def test_the_entry_routes_take_no_query_and_no_body(api: Api) -> None:
    path = f"/waitlist/{join(api)['waitlist_id']}"
    assert api.get(path, query={"x": "1"}).status == 400
    assert api.delete(path, query={"x": "1"}).status == 400
    reply = api.post(path + "/decline", {"reason": "no"})
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, "reason")
    assert api.post(path + "/decline", "not json").status == 400
    assert api.post(path + "/decline", {}).json["status"] == "waiting"


def test_another_method_on_a_waitlist_path_is_405(api: Api) -> None:
    reply = api.put("/waitlist", joining())
    assert (reply.status, reply.error_code) == (405, "method_not_allowed")
    assert reply.header("Allow") == "GET, POST"
    reply = api.get(f"/waitlist/{UNKNOWN_ID}/accept")
    assert (reply.status, reply.header("Allow")) == (405, "POST")


# Withdrawing ------------------------------------------------------------------------------


def test_withdrawing_answers_the_withdrawn_entry_and_repeating_it_is_harmless(api: Api) -> None:
    entry = join(api)
    path = f"/waitlist/{entry['waitlist_id']}"
    first = api.delete(path)
    assert (first.status, first.json["status"]) == (200, "withdrawn")
    again = api.delete(path)
    assert (again.status, again.json) == (200, first.json)
    assert api.get(path).json["status"] == "withdrawn"
    # Nothing left to accept; nothing to decline either (harmless).
    reply = api.post(path + "/accept")
    assert (reply.status, reply.error_code) == (409, "invalid_transition")
    assert api.post(path + "/decline").json == first.json


# Listing ----------------------------------------------------------------------------------


def test_a_doctors_waitlist_pages_oldest_first_until_next_token_is_null(
    api: Api, clock: FixedClock
) -> None:
    ids = []
    for i in range(5):
        ids.append(join(api, patient={"name": f"Paciente {i}", "phone": f"+5198700{i:04d}"}))
        clock.advance(timedelta(minutes=1))
    join(api, doctor_id="dr-scl")  # another doctor's entry: not in this list
    seen, token, pages = [], None, 0
    while True:
        query = {"doctor_id": "dr-lima", "limit": "2"} | ({"next_token": token} if token else {})
        reply = api.get("/waitlist", query=query)
        assert reply.status == 200
        pages += 1
        assert len(reply.json["items"]) == (2 if pages < 3 else 1)
        seen += reply.json["items"]
        token = reply.json["next_token"]
        if token is None:
            break
    assert pages == 3
    assert [e["waitlist_id"] for e in seen] == [e["waitlist_id"] for e in ids]
    assert seen == [api.get(f"/waitlist/{e['waitlist_id']}").json for e in ids]


def test_a_next_token_is_only_good_for_its_own_list(api: Api) -> None:
    for phone in ("+51987000001", "+51987000002"):
        join(api, patient={"name": "P", "phone": phone})
    token = api.get("/waitlist", query={"doctor_id": "dr-lima", "limit": "1"}).json["next_token"]
    assert token
    reply = api.get("/waitlist", query={"doctor_id": "dr-scl", "next_token": token})
    assert (reply.status, reply.error_code) == (400, "validation_error")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    reply = api.get("/waitlist", query={"doctor_id": "dr-lima", "next_token": tampered})
    assert (reply.status, reply.error_code) == (400, "validation_error")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "doctor_id"),
        ({"limit": "2"}, "doctor_id"),
        ({"doctor_id": "dr-lima", "date": MON}, "date"),
        ({"doctor_id": "dr-lima", "status": "waiting"}, "status"),
        ({"doctor_id": "dr-lima", "limit": "0"}, "limit"),
        ({"doctor_id": "dr-lima", "limit": "101"}, "limit"),
        ({"doctor_id": "dr-lima", "limit": "two"}, "limit"),
        ({"doctor_id": "dr-lima", "next_token": ""}, "next_token"),
        ({"doctor_id": "dr-lima", "next_token": "not-a-token"}, "next_token"),
        ({"doctor_id": ["dr-lima", "dr-scl"]}, "doctor_id"),
        ({"doctor_id": "dr lima"}, "doctor_id"),
    ],
)
def test_a_bad_list_query_is_400(api: Api, query: dict[str, Any], field: str) -> None:
    reply = api.get("/waitlist", query=query)
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == field


def test_the_waitlist_of_an_unknown_doctor_is_404(api: Api) -> None:
    reply = api.get("/waitlist", query={"doctor_id": "dr-nobody"})
    assert (reply.status, reply.error_code) == (404, "not_found")


# Offers -----------------------------------------------------------------------------------


def _cancelled_event(container: App, appointment_id: str) -> ev.Event:
    return next(
        e
        for e in container.outbox.pending(100)
        if isinstance(e, ev.AppointmentCancelled) and e.appointment_id == appointment_id
    )


def offered(api: Api, container: App, **extra: Any) -> dict[str, Any]:
    """An entry of Ana's, offered Luis's Monday 09:00 once he cancelled it."""
    luis = api.post("/appointments", booking() | {"patient": LUIS})
    assert luis.status == 201
    entry = join(api, **extra)
    assert free_slots(api)[0] == NINE_THIRTY  # Luis holds nine
    assert api.delete(f"/appointments/{luis.json['appointment_id']}").status == 200
    refilled = the_clinic(container).refill_after(
        _cancelled_event(container, luis.json["appointment_id"])
    )
    assert [e.waitlist_id for e in refilled] == [entry["waitlist_id"]]
    return entry


def test_freed_time_is_offered_and_held_for_the_oldest_fitting_entry(
    api: Api, container: App
) -> None:
    entry = offered(api, container)
    shown = api.get(f"/waitlist/{entry['waitlist_id']}").json
    assert set(shown) == ENTRY_KEYS | {"offer"}
    assert shown["status"] == "offered"
    # Local time with offset; held for 30 minutes from now (12:00 in Lima).
    assert shown["offer"] == {
        "start": NINE,
        "end": NINE_THIRTY,
        "expires_at": "2030-01-01T12:30:00-05:00",
    }
    assert shown["updated_at"] == "2030-01-01T12:00:00-05:00"
    assert NINE not in free_slots(api)
    reply = api.post("/appointments", booking() | {"patient": LUIS})
    assert (reply.status, reply.error_code) == (409, "slot_unavailable")
    listed = api.get("/waitlist", query={"doctor_id": "dr-lima"}).json["items"]
    assert listed == [shown]


def test_accepting_books_the_offer_confirmed_and_repeating_it_answers_the_same(
    api: Api, container: App
) -> None:
    entry = offered(api, container)
    path = f"/waitlist/{entry['waitlist_id']}"
    reply = api.post(path + "/accept")
    assert reply.status == 201
    appointment = reply.json
    assert reply.header("Location") == f"/appointments/{appointment['appointment_id']}"
    assert reply.header("ETag") == f'"{appointment["version"]}"'
    assert appointment["status"] == "confirmed"
    assert (appointment["start"], appointment["end"]) == (NINE, NINE_THIRTY)
    assert (appointment["doctor_id"], appointment["patient"]) == ("dr-lima", ANA)
    assert api.get(f"/appointments/{appointment['appointment_id']}").json == appointment
    booked = api.get(path).json
    assert booked["status"] == "booked" and "offer" not in booked
    assert booked["appointment_id"] == appointment["appointment_id"]
    again = api.post(path + "/accept")
    assert (again.status, again.json) == (200, appointment)
    assert again.header("Location") is None
    # A booked entry is left by cancelling its appointment, not by withdrawing.
    reply = api.delete(path)
    assert (reply.status, reply.error_code) == (409, "invalid_transition")
    assert api.post(path + "/decline").json == booked


def test_an_offer_accepted_after_its_hold_ran_out_is_422_offer_expired(
    api: Api, container: App, clock: FixedClock
) -> None:
    entry = offered(api, container)
    clock.advance(timedelta(minutes=31))
    reply = api.post(f"/waitlist/{entry['waitlist_id']}/accept")
    assert (reply.status, reply.error_code) == (422, "offer_expired")
    assert "expired_at" in reply.json["error"]["details"]
    # Nothing booked: once the sweep lets the offer go, the entry waits and nine is free.
    the_clinic(container).sweep_offers()
    assert api.get(f"/waitlist/{entry['waitlist_id']}").json["status"] == "waiting"
    assert NINE in free_slots(api)
    reply = api.post(f"/waitlist/{entry['waitlist_id']}/accept")
    assert (reply.status, reply.error_code) == (422, "offer_expired")


def test_declining_frees_the_slot_and_the_entry_waits_again(api: Api, container: App) -> None:
    entry = offered(api, container)
    path = f"/waitlist/{entry['waitlist_id']}"
    reply = api.post(path + "/decline")
    assert (reply.status, reply.json["status"]) == (200, "waiting")
    assert "offer" not in reply.json
    assert NINE in free_slots(api)
    again = api.post(path + "/decline")
    assert (again.status, again.json) == (200, reply.json)


def test_withdrawing_an_offered_entry_frees_its_slot(api: Api, container: App) -> None:
    entry = offered(api, container)
    reply = api.delete(f"/waitlist/{entry['waitlist_id']}")
    assert (reply.status, reply.json["status"]) == (200, "withdrawn")
    assert "offer" not in reply.json
    assert NINE in free_slots(api)


def test_accepting_while_the_patient_booked_that_time_elsewhere_is_409(
    api: Api, container: App
) -> None:
    entry = offered(api, container)
    # Ana took dr-scl at the same instant meanwhile (11:00 in Santiago is 09:00 in Lima).
    elsewhere = booking(start=f"{MON}T11:00:00-03:00") | {"doctor_id": "dr-scl"}
    assert api.post("/appointments", elsewhere).status == 201
    reply = api.post(f"/waitlist/{entry['waitlist_id']}/accept")
    assert (reply.status, reply.error_code) == (409, "patient_double_booked")
    assert api.get(f"/waitlist/{entry['waitlist_id']}").json["status"] == "offered"


def test_an_offer_follows_the_entrys_window(api: Api, container: App) -> None:
    # Only from 10:00: Luis's nine is no use to this entry, so nobody is offered it.
    luis = api.post("/appointments", booking() | {"patient": LUIS}).json
    entry = join(api, earliest="10:00")
    api.delete(f"/appointments/{luis['appointment_id']}")
    assert (
        the_clinic(container).refill_after(_cancelled_event(container, luis["appointment_id"]))
        == []
    )
    assert api.get(f"/waitlist/{entry['waitlist_id']}").json["status"] == "waiting"
    start = datetime.fromisoformat(NINE)
    assert the_clinic(container).refill("dr-lima", start, start + timedelta(hours=2)) != []
    offer = api.get(f"/waitlist/{entry['waitlist_id']}").json["offer"]
    assert offer["start"] == f"{MON}T10:00:00-05:00"


# Logs -------------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything the service logger writes, formatted as in Lambda (JSON lines)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(http_api.logger.registered_formatter)
    service_logger = logging.getLogger(http_api.SERVICE)
    service_logger.addHandler(handler)
    yield stream
    service_logger.removeHandler(handler)


def test_each_waitlist_request_is_logged_by_route_and_ids_without_patient_data(
    api: Api, container: App, log_lines: io.StringIO
) -> None:
    entry = offered(api, container)
    api.post(f"/waitlist/{entry['waitlist_id']}/accept")
    api.post("/waitlist", joining(to="2030-12-31"))
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    joined = next(r for r in records if r.get("route") == "/waitlist" and r["status"] == 201)
    assert joined["waitlist_id"] == entry["waitlist_id"]
    (accepted,) = [r for r in records if r.get("route") == "/waitlist/{waitlist_id}/accept"]
    assert accepted["status"] == 201
    assert accepted["waitlist_id"] == entry["waitlist_id"]
    assert accepted["appointment_id"]
    assert (records[-1]["status"], records[-1]["error_code"]) == (400, "validation_error")
    for secret in (ANA["name"], ANA["phone"], ANA["document_id"], "987654321"):
        assert secret not in log_lines.getvalue()


# Clinics ----------------------------------------------------------------------------------

SOL = LocalClinic(ClinicProfile("sol", "Clínica Sol"), "sol-key")
LUNA = LocalClinic(ClinicProfile("luna", "Clínica Luna"), "luna-key")


@pytest.fixture
def two() -> Iterator[App]:
    """The HTTP handler's app serving two clinics on one memory store."""
    settings = Settings(clinics=(SOL, LUNA), notifier="memory", page_token_key=b"k" * 32)
    SLOT.app = build_app(settings, clock=FixedClock(NOW))
    yield SLOT.app
    SLOT.app = None


def call(method: str, path: str, clinic: LocalClinic, body: Any = None, **kw: Any) -> Any:
    """The handler's answer to one proxy event with `clinic`'s key."""
    raw = event(method, path, body=body, **kw)
    raw["requestContext"]["identity"]["apiKeyId"] = clinic.api_key_id
    response = handler(raw, None)
    return response["statusCode"], json.loads(response["body"])


def test_another_clinics_key_finds_no_entry_and_no_list(two: App) -> None:
    assert call("PUT", "/doctors/dr-lima", SOL, LIMA_DOCTOR)[0] == 201
    status, entry = call("POST", "/waitlist", SOL, joining())
    assert status == 201
    path = f"/waitlist/{entry['waitlist_id']}"
    for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/accept"), ("POST", "/decline")):
        status, body = call(method, path + suffix, LUNA)
        assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = call("GET", "/waitlist", LUNA, query={"doctor_id": "dr-lima"})
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = call("POST", "/waitlist", LUNA, joining())
    assert (status, body["error"]["code"]) == (404, "not_found")
    # The same doctor id in the other clinic: its own, empty waitlist.
    assert call("PUT", "/doctors/dr-lima", LUNA, LIMA_DOCTOR)[0] == 201
    assert call("GET", "/waitlist", LUNA, query={"doctor_id": "dr-lima"})[1]["items"] == []
    assert call("GET", path, LUNA)[0] == 404
    status, body = call("GET", path, SOL)
    assert (status, body) == (200, entry)
