"""The HTTP API through its Lambda handler, in process, on the memory backend."""

from __future__ import annotations

import base64
import importlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from adapters.memory.store import InMemoryBookingRequestQueue, InMemoryEventOutbox
from adapters.system import FixedClock
from domain.booking_request import BookingRequest
from domain.errors import TemporarilyUnavailable
from domain.use_cases import Clinic
from entrypoints.bootstrap import App, LazyApp, app_from_env, build_app
from entrypoints.config import Settings
from ports.messaging import BookingRequestQueue
from tests.support.apps import AppSlot
from tests.unit.apigw import Client, Reply, event

http_api: ModuleType = importlib.import_module("entrypoints.lambda.http_api")
# The handler under test runs on the app each test builds and puts in the slot.
SLOT = AppSlot()
handler = http_api.make_handler(SLOT)
# Most requests book nothing and so flush no metric; Powertools warns about that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

# A Tuesday noon in Lima; Monday 2030-01-07 is the booking day (Lima is UTC-5 all year,
# Santiago is UTC-3 in its summer).
NOW = datetime(2030, 1, 1, 17, 0, tzinfo=UTC)
MON = "2030-01-07"
HOURS = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
LIMA_DOCTOR = {"name": "Dra. María Quispe", "country": "PE", "working_hours": HOURS}
SCL_DOCTOR = {
    "name": "Dr. Matías Soto",
    "country": "CL",
    "slot_minutes": 20,
    "working_hours": HOURS,
}
ANA = {"name": "Ana Pérez Ñahui", "phone": "+51987654321", "document_id": "40404040"}
LUIS = {"name": "Luis Quispe", "phone": "+51911222333"}
UNKNOWN_ID = "01890a5d-ac96-774b-bcce-b302099a8057"


def booking(start: str = f"{MON}T09:00:00-05:00", **extra: Any) -> dict[str, Any]:
    return {"doctor_id": "dr-lima", "patient": ANA, "start": start, **extra}


class Api(Client):
    """The client, checking what every answer must be: JSON, never a stack trace."""

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        reply = super().call(method, path, **kwargs)
        assert "Traceback" not in reply.text
        assert reply.header("Content-Type") == "application/json; charset=utf-8"
        body = reply.json
        if reply.status >= 400:
            assert set(body) == {"error"}
            assert set(body["error"]) == {"code", "message", "details"}
            assert isinstance(body["error"]["details"], dict)
        return reply


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def container(clock: FixedClock) -> Iterator[App]:
    """The test's app (named as before the app object existed)."""
    SLOT.app = build_app(Settings(), clock=clock)
    yield SLOT.app
    SLOT.app = None


@pytest.fixture
def api(container: Any) -> Api:
    client = Api(handler)
    assert client.put("/doctors/dr-lima", LIMA_DOCTOR).status == 201
    assert client.put("/doctors/dr-scl", SCL_DOCTOR).status == 201
    return client


@pytest.fixture
def booked(api: Api) -> dict[str, Any]:
    reply = api.post("/appointments", booking())
    assert reply.status == 201
    return dict(reply.json)


def the_clinic(container: App) -> Clinic:
    return container.clinic


# The container ---------------------------------------------------------------------------


def test_the_container_serves_the_clinic_and_the_in_memory_ports_the_local_server_drives() -> None:
    fixed = FixedClock(NOW)
    built = build_app(Settings(), clock=fixed)
    assert isinstance(built.clinic, Clinic)
    assert built.clinic is built.clinic
    assert built.clock is fixed
    assert built.clinic.clock is fixed
    assert built.memory is not None
    assert built.request_queue is built.memory.request_queue
    assert isinstance(built.request_queue, InMemoryBookingRequestQueue)
    assert isinstance(built.outbox, InMemoryEventOutbox)


def test_get_container_builds_one_container_per_process_until_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITAS_BACKEND", "memory")
    default = LazyApp(app_from_env)
    assert not default.built
    first = default()
    assert default() is first
    assert LazyApp(app_from_env)() is not first


def test_a_build_without_the_aws_adapters_refuses_the_aws_backend_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry makes the import fail as if the package were not shipped.
    monkeypatch.setitem(sys.modules, "adapters.aws.bootstrap", None)
    with pytest.raises(RuntimeError, match="aws backend is not available"):
        build_app(Settings(backend="aws"))


# Doctors ---------------------------------------------------------------------------------


def test_putting_a_new_doctor_answers_201_with_the_doctor_and_defaults(container: Any) -> None:
    api = Api(handler)
    reply = api.put("/doctors/dr-lima", LIMA_DOCTOR)
    assert reply.status == 201
    assert reply.json == {
        "doctor_id": "dr-lima",
        "name": "Dra. María Quispe",
        "country": "PE",
        "time_zone": "America/Lima",
        "slot_minutes": 30,
        "working_hours": HOURS,
    }


def test_putting_an_existing_doctor_replaces_it_with_200(api: Api) -> None:
    changed = {**LIMA_DOCTOR, "slot_minutes": 60, "time_zone": "America/Bogota"}
    reply = api.put("/doctors/dr-lima", changed)
    assert reply.status == 200
    assert reply.json["slot_minutes"] == 60
    assert api.get("/doctors/dr-lima").json["time_zone"] == "America/Bogota"


def test_getting_a_doctor_returns_it_and_an_unknown_one_is_404(api: Api) -> None:
    assert api.get("/doctors/dr-scl").json["slot_minutes"] == 20
    reply = api.get("/doctors/nobody")
    assert (reply.status, reply.error_code) == (404, "not_found")


def test_a_malformed_doctor_id_in_the_path_is_400(api: Api) -> None:
    reply = api.get("/doctors/dr.lima")
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == "doctor_id"
    assert api.put("/doctors/" + "x" * 65, LIMA_DOCTOR).status == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**LIMA_DOCTOR, "email": "x@example.com"}, "email"),
        ({"country": "PE", "working_hours": HOURS}, "name"),
        ({"name": "Dr. X", "working_hours": HOURS}, "country"),
        ({"name": "Dr. X", "country": "PE"}, "working_hours"),
        ({**LIMA_DOCTOR, "slot_minutes": 25}, "slot_minutes"),
        ({**LIMA_DOCTOR, "slot_minutes": True}, "slot_minutes"),
        ({**LIMA_DOCTOR, "slot_minutes": 30.0}, "slot_minutes"),
        ({**LIMA_DOCTOR, "slot_minutes": "30"}, "slot_minutes"),
        ({**LIMA_DOCTOR, "name": ""}, "name"),
        ({**LIMA_DOCTOR, "name": None}, "name"),
        ({**LIMA_DOCTOR, "country": "pe"}, "country"),
        ({**LIMA_DOCTOR, "country": "AR"}, "country"),
        ({**LIMA_DOCTOR, "time_zone": "Mars/Olympus"}, "time_zone"),
        ({**LIMA_DOCTOR, "working_hours": {"monday": [["09:00", "13:00"]]}}, None),
        ({**LIMA_DOCTOR, "working_hours": {"mon": [["9:00", "13:00"]]}}, "working_hours"),
        ({**LIMA_DOCTOR, "working_hours": {"mon": [["09:00"]]}}, "working_hours.mon[0]"),
        ({**LIMA_DOCTOR, "working_hours": {"mon": "09:00-13:00"}}, "working_hours.mon"),
        ({**LIMA_DOCTOR, "working_hours": []}, "working_hours"),
        (
            {**LIMA_DOCTOR, "working_hours": {"mon": [["09:00", "13:00"], ["12:00", "14:00"]]}},
            "working_hours",
        ),
    ],
)
def test_a_doctor_body_that_breaks_the_schema_is_400_naming_the_field(
    api: Api, body: dict[str, Any], field: str | None
) -> None:
    reply = api.put("/doctors/dr-new", body)
    assert (reply.status, reply.error_code) == (400, "validation_error")
    if field is not None:
        assert reply.json["error"]["details"]["field"] == field
    else:
        assert reply.json["error"]["details"]["field"].startswith("working_hours")
    assert api.get("/doctors/dr-new").status == 404


# Availability ----------------------------------------------------------------------------


def test_availability_lists_the_free_slots_in_the_doctors_local_time(api: Api) -> None:
    reply = api.get("/doctors/dr-lima/availability", query={"date": MON})
    assert reply.status == 200
    body = reply.json
    assert (body["doctor_id"], body["date"], body["time_zone"]) == ("dr-lima", MON, "America/Lima")
    assert len(body["slots"]) == 16
    assert body["slots"][0] == {"start": f"{MON}T09:00:00-05:00", "end": f"{MON}T09:30:00-05:00"}
    assert body["slots"][-1]["end"] == f"{MON}T18:00:00-05:00"


def test_availability_leaves_out_booked_and_past_slots(api: Api, clock: FixedClock) -> None:
    api.post("/appointments", booking())
    clock.set(datetime.fromisoformat(f"{MON}T10:10:00-05:00"))
    slots = api.get("/doctors/dr-lima/availability", query={"date": MON}).json["slots"]
    assert slots[0]["start"] == f"{MON}T10:30:00-05:00"
    assert f"{MON}T09:00:00-05:00" not in [s["start"] for s in slots]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"date": "2030-1-7"},
        {"date": "2030-13-01"},
        {"date": "07/01/2030"},
        {"date": f"{MON}T09:00:00-05:00"},
        {"date": MON, "doctor_id": "dr-lima"},
        {"date": [MON, MON]},
    ],
)
def test_availability_needs_exactly_one_well_formed_date(api: Api, query: dict[str, Any]) -> None:
    reply = api.get("/doctors/dr-lima/availability", query=query)
    assert (reply.status, reply.error_code) == (400, "validation_error")


def test_availability_of_an_unknown_doctor_is_404(api: Api) -> None:
    assert api.get("/doctors/nobody/availability", query={"date": MON}).status == 404


# Booking ---------------------------------------------------------------------------------


def test_booking_answers_201_with_location_etag_and_the_appointment_in_local_time(
    api: Api,
) -> None:
    reply = api.post("/appointments", booking(start=f"{MON}T14:00:00Z", notes="Primera vez"))
    assert reply.status == 201
    body = reply.json
    assert reply.header("Location") == f"/appointments/{body['appointment_id']}"
    assert reply.header("ETag") == '"1"'
    assert body == {
        "appointment_id": body["appointment_id"],
        "doctor_id": "dr-lima",
        "country": "PE",
        "patient": ANA,
        "start": f"{MON}T09:00:00-05:00",
        "end": f"{MON}T09:30:00-05:00",
        "duration_minutes": 30,
        "status": "requested",
        "version": 1,
        "created_at": "2030-01-01T12:00:00-05:00",
        "updated_at": "2030-01-01T12:00:00-05:00",
        "notes": "Primera vez",
    }
    assert body["appointment_id"][14] == "7"  # UUID version 7


def test_an_appointment_without_notes_has_no_notes_field_and_keeps_accents_as_utf8(
    booked: dict[str, Any], api: Api
) -> None:
    assert "notes" not in booked
    reply = api.get(f"/appointments/{booked['appointment_id']}")
    assert "Ana Pérez Ñahui" in reply.text  # not \u00e9 escapes


def test_a_santiago_appointment_is_shown_in_santiago_time(api: Api) -> None:
    reply = api.post(
        "/appointments",
        {
            "doctor_id": "dr-scl",
            "patient": LUIS,
            "start": f"{MON}T12:20:00Z",
            "duration_minutes": 40,
        },
    )
    assert reply.status == 201
    assert reply.json["start"] == f"{MON}T09:20:00-03:00"
    assert reply.json["end"] == f"{MON}T10:00:00-03:00"
    assert reply.json["duration_minutes"] == 40


def test_booking_with_an_unknown_doctor_is_404(api: Api) -> None:
    reply = api.post("/appointments", booking() | {"doctor_id": "nobody"})
    assert (reply.status, reply.error_code) == (404, "not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (booking() | {"urgent": True}, "urgent"),
        ({"doctor_id": "dr-lima", "start": f"{MON}T09:00:00-05:00"}, "patient"),
        ({"doctor_id": "dr-lima", "patient": ANA}, "start"),
        ({"patient": ANA, "start": f"{MON}T09:00:00-05:00"}, "doctor_id"),
        (booking() | {"patient": {**ANA, "age": 30}}, "patient.age"),
        (booking() | {"patient": {"name": "Ana"}}, "patient.phone"),
        (booking() | {"patient": {**ANA, "phone": "987654321"}}, "patient.phone"),
        (booking() | {"patient": {**ANA, "phone": "+51 987 654 321"}}, "patient.phone"),
        (booking() | {"patient": {**ANA, "phone": 51987654321}}, "patient.phone"),
        (booking() | {"patient": {**ANA, "document_id": "40.404.040"}}, "patient.document_id"),
        (booking() | {"patient": {**ANA, "name": "  "}}, "patient.name"),
        (booking() | {"patient": "Ana"}, "patient"),
        (booking() | {"duration_minutes": True}, "duration_minutes"),
        (booking() | {"duration_minutes": "30"}, "duration_minutes"),
        (booking() | {"duration_minutes": 30.0}, "duration_minutes"),
        (booking() | {"duration_minutes": 0}, "duration_minutes"),
        (booking() | {"duration_minutes": 270}, "duration_minutes"),
        (booking() | {"duration_minutes": None}, "duration_minutes"),
        (booking(start=f"{MON}T09:00:00"), "start"),
        (booking(start=MON), "start"),
        (booking(start=f"{MON} 09:00:00-05:00"), "start"),
        (booking(start="mañana a las 9"), "start"),
        (booking(start=f"{MON}T25:00:00-05:00"), "start"),
        (booking(start=f"{MON}T09:00:00+24:00"), "start"),
        (booking(start="9999-12-31T23:30:00-05:00"), "start"),
        (booking(start=1894024800), "start"),
        (booking(notes="x" * 501), "notes"),
        (booking(notes=42), "notes"),
        (booking() | {"doctor_id": "dr lima"}, "doctor_id"),
        (booking() | {"doctor_id": 7}, "doctor_id"),
    ],
)
def test_a_booking_body_that_breaks_the_schema_is_400_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    for path in ("/appointments", "/appointment-requests"):
        reply = api.post(path, body)
        assert (reply.status, reply.error_code) == (400, "validation_error"), path
        assert reply.json["error"]["details"]["field"] == field


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        "[]",
        '"a string"',
        "null",
        '{"doctor_id": "dr-lima", "doctor_id": "dr-lima"}',
        '{"duration_minutes": NaN}',
        "[" * 5000 + "]" * 5000,
    ],
)
def test_a_body_that_is_not_one_json_object_is_400(api: Api, raw: str) -> None:
    reply = api.post("/appointments", raw)
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == "body"


def test_a_missing_body_is_400(api: Api) -> None:
    reply = api.post("/appointments")
    assert (reply.status, reply.error_code) == (400, "validation_error")


def test_a_booking_for_a_taken_slot_is_409_slot_unavailable(
    api: Api, booked: dict[str, Any]
) -> None:
    reply = api.post("/appointments", booking() | {"patient": LUIS})
    assert (reply.status, reply.error_code) == (409, "slot_unavailable")


def test_a_patient_booked_elsewhere_at_that_time_is_409_patient_double_booked(
    api: Api, booked: dict[str, Any]
) -> None:
    reply = api.post(
        "/appointments", {"doctor_id": "dr-scl", "patient": ANA, "start": f"{MON}T14:00:00Z"}
    )
    assert (reply.status, reply.error_code) == (409, "patient_double_booked")


@pytest.mark.parametrize(
    ("start", "extra", "code"),
    [
        ("2029-12-31T09:00:00-05:00", {}, "start_in_past"),
        (f"{MON}T08:00:00-05:00", {}, "outside_working_hours"),
        (f"{MON}T12:30:00-05:00", {"duration_minutes": 60}, "outside_working_hours"),
        ("2030-01-05T09:00:00-05:00", {}, "outside_working_hours"),
        (f"{MON}T09:10:00-05:00", {}, "invalid_slot"),
        (f"{MON}T09:00:00-05:00", {"duration_minutes": 45}, "invalid_slot"),
    ],
)
def test_a_booking_that_breaks_a_rule_is_422_with_its_code(
    api: Api, start: str, extra: dict[str, Any], code: str
) -> None:
    reply = api.post("/appointments", booking(start=start, **extra))
    assert (reply.status, reply.error_code) == (422, code)


def test_an_idempotent_retry_returns_the_same_appointment_and_books_nothing_new(
    api: Api,
) -> None:
    key = {"Idempotency-Key": "booking-7f3a"}
    first = api.post("/appointments", booking(), headers=key)
    again = api.post("/appointments", booking(start=f"{MON}T14:00:00Z"), headers=key)
    assert (first.status, again.status) == (201, 201)
    assert again.json == first.json
    assert again.header("Location") == first.header("Location")
    listed = api.get("/appointments", query={"doctor_id": "dr-lima", "date": MON}).json
    assert [a["appointment_id"] for a in listed["items"]] == [first.json["appointment_id"]]


def test_the_idempotency_key_header_name_is_case_insensitive(api: Api) -> None:
    first = api.post("/appointments", booking(), headers={"idempotency-key": "k-1"})
    again = api.post("/appointments", booking(), headers={"IDEMPOTENCY-KEY": "k-1"})
    assert again.json["appointment_id"] == first.json["appointment_id"]


def test_the_same_idempotency_key_with_another_body_is_422(api: Api) -> None:
    key = {"Idempotency-Key": "booking-7f3a"}
    assert api.post("/appointments", booking(), headers=key).status == 201
    reply = api.post("/appointments", booking(start=f"{MON}T10:00:00-05:00"), headers=key)
    assert (reply.status, reply.error_code) == (422, "idempotency_key_reused")


@pytest.mark.parametrize("headers", [{"Idempotency-Key": "a key"}, {"Idempotency-Key": ["a", "b"]}])
def test_a_malformed_or_repeated_idempotency_key_is_400(api: Api, headers: dict[str, Any]) -> None:
    reply = api.post("/appointments", booking(), headers=headers)
    assert (reply.status, reply.error_code) == (400, "validation_error")


# Body size -------------------------------------------------------------------------------


def _padded(size: int, fill: str = "x") -> str:
    """A booking body of exactly `size` UTF-8 bytes (notes padded)."""
    base = json.dumps(booking(notes=""), ensure_ascii=False)
    room = size - len(base.encode("utf-8"))
    notes = fill * (room // len(fill.encode("utf-8")))
    text = json.dumps(booking(notes=notes), ensure_ascii=False)
    return text + " " * (size - len(text.encode("utf-8")))


def test_a_body_of_16_kib_is_read_but_one_byte_more_is_413(api: Api) -> None:
    at_limit = api.post("/appointments", _padded(16 * 1024))
    assert at_limit.status == 400  # read: its notes are over 500 characters
    assert at_limit.json["error"]["details"]["field"] == "notes"
    reply = api.post("/appointments", _padded(16 * 1024 + 1))
    assert (reply.status, reply.error_code) == (413, "payload_too_large")


def test_the_body_limit_counts_utf8_bytes_not_characters(api: Api) -> None:
    raw = _padded(16 * 1024 + 2, fill="ñ")
    assert len(raw) < 16 * 1024
    reply = api.post("/appointments", raw)
    assert (reply.status, reply.error_code) == (413, "payload_too_large")


def test_a_base64_encoded_body_is_decoded_and_limited_by_its_decoded_size(api: Api) -> None:
    assert api.post("/appointments", booking(), base64_body=True).status == 201
    reply = api.post("/appointments", _padded(16 * 1024 + 1), base64_body=True)
    assert (reply.status, reply.error_code) == (413, "payload_too_large")


def test_an_invalid_base64_body_is_400(api: Api) -> None:
    bad = event("POST", "/appointments", body="not base64!!")
    bad["isBase64Encoded"] = True
    response = handler(bad, None)
    assert response["statusCode"] == 400


# Reading and listing ---------------------------------------------------------------------


def test_getting_an_appointment_returns_it_with_its_etag(api: Api, booked: dict[str, Any]) -> None:
    reply = api.get(f"/appointments/{booked['appointment_id']}")
    assert (reply.status, reply.json, reply.header("ETag")) == (200, booked, '"1"')
    upper = api.get(f"/appointments/{booked['appointment_id'].upper()}")
    assert upper.json == booked


@pytest.mark.parametrize("path", ["/appointments/42", "/appointments/not-a-uuid"])
def test_a_malformed_appointment_id_is_400(api: Api, path: str) -> None:
    for reply in (
        api.get(path),
        api.patch(path, {"start": f"{MON}T10:00:00-05:00"}),
        api.post(path + "/status", {"status": "confirmed"}),
        api.delete(path),
    ):
        assert (reply.status, reply.error_code) == (400, "validation_error")
        assert reply.json["error"]["details"]["field"] == "appointment_id"


def test_an_unknown_well_formed_appointment_id_is_404(api: Api) -> None:
    path = f"/appointments/{UNKNOWN_ID}"
    for reply in (
        api.get(path),
        api.patch(path, {"start": f"{MON}T10:00:00-05:00"}),
        api.post(path + "/status", {"status": "confirmed"}),
        api.delete(path),
    ):
        assert (reply.status, reply.error_code) == (404, "not_found")


def _book_many(api: Api, count: int) -> list[str]:
    ids = []
    for i in range(count):
        who = {"name": f"Paciente {i}", "phone": f"+5198700{i:04d}"}
        start = f"{MON}T{9 + i:02d}:00:00-05:00"
        reply = api.post("/appointments", booking(start=start) | {"patient": who})
        assert reply.status == 201
        ids.append(reply.json["appointment_id"])
    return ids


def test_a_doctors_day_pages_in_start_order_until_next_token_is_null(api: Api) -> None:
    ids = _book_many(api, 3)
    query: dict[str, str] = {"doctor_id": "dr-lima", "date": MON, "limit": "2"}
    first = api.get("/appointments", query=query).json
    assert [a["appointment_id"] for a in first["items"]] == ids[:2]
    assert isinstance(first["next_token"], str)
    second = api.get("/appointments", query=query | {"next_token": first["next_token"]}).json
    assert [a["appointment_id"] for a in second["items"]] == ids[2:]
    assert second["next_token"] is None


def test_a_doctors_day_of_another_date_is_empty(api: Api, booked: dict[str, Any]) -> None:
    reply = api.get("/appointments", query={"doctor_id": "dr-lima", "date": "2030-01-08"})
    assert reply.json == {"items": [], "next_token": None}


def test_listing_the_day_of_an_unknown_doctor_is_404(api: Api) -> None:
    reply = api.get("/appointments", query={"doctor_id": "nobody", "date": MON})
    assert (reply.status, reply.error_code) == (404, "not_found")


def test_a_country_and_status_list_honours_from_and_to(api: Api) -> None:
    ids = _book_many(api, 3)
    api.post(f"/appointments/{ids[0]}/status", {"status": "confirmed"})
    requested = api.get("/appointments", query={"country": "PE", "status": "requested"}).json
    assert [a["appointment_id"] for a in requested["items"]] == ids[1:]
    window = {"from": f"{MON}T10:00:00-05:00", "to": f"{MON}T16:00:00Z"}
    bounded = api.get("/appointments", query={"country": "PE", "status": "requested"} | window)
    assert [a["appointment_id"] for a in bounded.json["items"]] == [ids[1]]
    confirmed = api.get("/appointments", query={"country": "PE", "status": "confirmed"}).json
    assert [a["status"] for a in confirmed["items"]] == ["confirmed"]
    chile = api.get("/appointments", query={"country": "CL", "status": "requested"}).json
    assert chile["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"doctor_id": "dr-lima"},
        {"date": MON},
        {"country": "PE"},
        {"status": "requested"},
        {"doctor_id": "dr-lima", "date": MON, "country": "PE"},
        {"doctor_id": "dr-lima", "date": MON, "from": f"{MON}T09:00:00-05:00"},
        {"country": "PE", "status": "requested", "doctor_id": "dr-lima"},
        {"country": "PE", "status": "requested", "date": MON},
        {"doctor_id": "dr-lima", "date": MON, "sort": "start"},
        {"doctor_id": "dr-lima", "date": MON, "limit": "0"},
        {"doctor_id": "dr-lima", "date": MON, "limit": "101"},
        {"doctor_id": "dr-lima", "date": MON, "limit": "abc"},
        {"doctor_id": "dr-lima", "date": MON, "limit": "-1"},
        {"doctor_id": "dr-lima", "date": MON, "limit": "1.5"},
        {"doctor_id": "dr-lima", "date": MON, "limit": ""},
        {"doctor_id": "dr-lima", "date": MON, "limit": ["1", "2"]},
        {"doctor_id": "dr-lima", "date": "2030-02-30"},
        {"doctor_id": "dr lima", "date": MON},
        {"country": "PE", "status": "pending"},
        {"country": "pe", "status": "requested"},
        {"country": "AR", "status": "requested"},
        {"country": "PE", "status": "requested", "from": f"{MON}T09:00:00"},
        {"country": "PE", "status": "requested", "from": f"{MON}T09:00:00 05:00"},
        {"country": "PE", "status": "requested", "to": MON},
        {
            "country": "PE",
            "status": "requested",
            "from": f"{MON}T10:00:00Z",
            "to": f"{MON}T09:00:00Z",
        },
        {"doctor_id": "dr-lima", "date": MON, "next_token": ""},
    ],
)
def test_any_other_list_query_is_400(api: Api, query: dict[str, Any]) -> None:
    reply = api.get("/appointments", query=query)
    assert (reply.status, reply.error_code) == (400, "validation_error")


def test_limit_accepts_1_and_100(api: Api) -> None:
    for limit in ("1", "100"):
        query = {"doctor_id": "dr-lima", "date": MON, "limit": limit}
        assert api.get("/appointments", query=query).status == 200


def test_a_garbage_next_token_is_400(api: Api) -> None:
    query = {"doctor_id": "dr-lima", "date": MON, "next_token": "garbage!"}
    reply = api.get("/appointments", query=query)
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, "next_token")


def _first_token(api: Api) -> str:
    _book_many(api, 2)
    query = {"doctor_id": "dr-lima", "date": MON, "limit": "1"}
    token = api.get("/appointments", query=query).json["next_token"]
    assert isinstance(token, str)
    return token


def test_a_tampered_next_token_is_400(api: Api) -> None:
    token = _first_token(api)
    # `<payload>.<mac>`: an edited payload keeps the old MAC, a flipped MAC the old payload.
    body, mac = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["c"]["start"] = "yesterday"
    edited = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    tampered = f"{edited}.{mac}"
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (tampered, flipped, edited):
        reply = api.get(
            "/appointments",
            query={"doctor_id": "dr-lima", "date": MON, "limit": "1", "next_token": bad},
        )
        assert (reply.status, reply.error_code) == (400, "validation_error")


def test_a_next_token_from_another_query_is_400(api: Api) -> None:
    token = _first_token(api)
    for other in (
        {"doctor_id": "dr-lima", "date": "2030-01-08"},
        {"country": "PE", "status": "requested"},
    ):
        reply = api.get("/appointments", query=other | {"next_token": token})
        assert (reply.status, reply.error_code) == (400, "validation_error")


# Changing appointments -------------------------------------------------------------------


def test_rescheduling_moves_the_appointment_frees_the_old_slot_and_bumps_the_version(
    api: Api, booked: dict[str, Any]
) -> None:
    path = f"/appointments/{booked['appointment_id']}"
    api.post(path + "/status", {"status": "confirmed"})
    reply = api.patch(path, {"start": f"{MON}T15:00:00-05:00", "duration_minutes": 60})
    assert reply.status == 200
    body = reply.json
    assert (body["start"], body["end"], body["status"]) == (
        f"{MON}T15:00:00-05:00",
        f"{MON}T16:00:00-05:00",
        "requested",
    )
    assert (body["version"], reply.header("ETag")) == (3, '"3"')
    free = api.get("/doctors/dr-lima/availability", query={"date": MON}).json["slots"]
    assert f"{MON}T09:00:00-05:00" in [s["start"] for s in free]
    assert f"{MON}T15:30:00-05:00" not in [s["start"] for s in free]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "start"),
        ({"start": f"{MON}T10:00:00"}, "start"),
        ({"start": f"{MON}T10:00:00-05:00", "doctor_id": "dr-scl"}, "doctor_id"),
        ({"start": f"{MON}T10:00:00-05:00", "duration_minutes": False}, "duration_minutes"),
    ],
)
def test_a_reschedule_body_that_breaks_the_schema_is_400(
    api: Api, booked: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    reply = api.patch(f"/appointments/{booked['appointment_id']}", body)
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, field)


def test_rescheduling_onto_a_taken_slot_is_409_and_changes_nothing(api: Api) -> None:
    first, _ = _book_many(api, 2)
    reply = api.patch(f"/appointments/{first}", {"start": f"{MON}T10:00:00-05:00"})
    assert (reply.status, reply.error_code) == (409, "slot_unavailable")
    assert api.get(f"/appointments/{first}").json["version"] == 1


def test_rescheduling_into_the_past_is_422(api: Api, booked: dict[str, Any]) -> None:
    reply = api.patch(
        f"/appointments/{booked['appointment_id']}", {"start": "2029-12-31T09:00:00-05:00"}
    )
    assert (reply.status, reply.error_code) == (422, "start_in_past")


@pytest.mark.parametrize("if_match", ["1", '"1"', 'W/"1"'])
def test_if_match_with_the_current_version_lets_the_change_through(
    api: Api, booked: dict[str, Any], if_match: str
) -> None:
    reply = api.post(
        f"/appointments/{booked['appointment_id']}/status",
        {"status": "confirmed"},
        headers={"if-match": if_match},
    )
    assert (reply.status, reply.json["version"]) == (200, 2)


def test_if_match_with_an_old_version_is_412_and_changes_nothing(
    api: Api, booked: dict[str, Any]
) -> None:
    path = f"/appointments/{booked['appointment_id']}"
    api.post(path + "/status", {"status": "confirmed"})
    for reply in (
        api.patch(path, {"start": f"{MON}T15:00:00-05:00"}, headers={"If-Match": '"1"'}),
        api.post(path + "/status", {"status": "cancelled"}, headers={"If-Match": "1"}),
        api.delete(path, headers={"If-Match": "1"}),
    ):
        assert (reply.status, reply.error_code) == (412, "version_conflict")
    assert api.get(path).json["status"] == "confirmed"


@pytest.mark.parametrize("if_match", ["abc", '"1', "1.0", "*", "-1", "1, 2", "W/1", ""])
def test_a_malformed_if_match_is_400(api: Api, booked: dict[str, Any], if_match: str) -> None:
    reply = api.post(
        f"/appointments/{booked['appointment_id']}/status",
        {"status": "confirmed"},
        headers={"If-Match": if_match},
    )
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, "If-Match")


def test_confirming_then_completing_after_the_start_follows_the_status_machine(
    api: Api, booked: dict[str, Any], clock: FixedClock
) -> None:
    path = f"/appointments/{booked['appointment_id']}/status"
    early = api.post(path, {"status": "completed"})
    assert (early.status, early.error_code) == (409, "invalid_transition")
    assert api.post(path, {"status": "confirmed"}).json["status"] == "confirmed"
    too_soon = api.post(path, {"status": "completed"})
    assert (too_soon.status, too_soon.error_code) == (409, "invalid_transition")
    clock.set(datetime.fromisoformat(f"{MON}T09:40:00-05:00"))
    done = api.post(path, {"status": "completed", "reason": "atendida"})
    assert (done.status, done.json["status"], done.json["version"]) == (200, "completed", 3)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "requested"}, "status"),
        ({"status": "CONFIRMED"}, "status"),
        ({"status": True}, "status"),
        ({}, "status"),
        ({"status": "cancelled", "reason": 5}, "reason"),
        ({"status": "cancelled", "reason": "x" * 501}, "reason"),
        ({"status": "cancelled", "by": "reception"}, "by"),
    ],
)
def test_a_status_body_that_breaks_the_schema_is_400(
    api: Api, booked: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    reply = api.post(f"/appointments/{booked['appointment_id']}/status", body)
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, field)


def test_deleting_cancels_keeps_the_record_and_frees_the_time(
    api: Api, booked: dict[str, Any]
) -> None:
    path = f"/appointments/{booked['appointment_id']}"
    reply = api.delete(path)
    assert (reply.status, reply.json["status"], reply.json["version"]) == (200, "cancelled", 2)
    assert api.get(path).json["status"] == "cancelled"
    again = api.delete(path)
    assert (again.status, again.json) == (200, reply.json)
    assert api.post("/appointments", booking() | {"patient": LUIS}).status == 201
    final = api.post(path + "/status", {"status": "confirmed"})
    assert (final.status, final.error_code) == (409, "invalid_transition")


# Asynchronous booking requests -----------------------------------------------------------


def test_a_booking_request_is_accepted_then_booked_by_the_worker(api: Api, container: Any) -> None:
    reply = api.post("/appointment-requests", booking())
    assert reply.status == 202
    request_id = reply.json["request_id"]
    assert reply.json == {"request_id": request_id, "status": "pending"}
    path = f"/appointment-requests/{request_id}"
    assert api.get(path).json == {"request_id": request_id, "status": "pending"}
    assert container.memory is not None
    queue = container.memory.request_queue
    assert queue.take("PE", timeout=0) == request_id
    the_clinic(container).process_booking_request(request_id)
    done = api.get(path).json
    assert done["status"] == "booked"
    assert api.get(f"/appointments/{done['appointment_id']}").json["patient"] == ANA


def test_a_booking_request_that_cannot_be_booked_ends_rejected(
    api: Api, container: Any, booked: dict[str, Any]
) -> None:
    request_id = api.post("/appointment-requests", booking() | {"patient": LUIS}).json["request_id"]
    the_clinic(container).process_booking_request(request_id)
    reply = api.get(f"/appointment-requests/{request_id}").json
    assert reply["status"] == "rejected"
    assert reply["error"]["code"] == "slot_unavailable"
    assert "appointment_id" not in reply


def test_a_booking_request_for_an_unknown_doctor_is_404_at_once(api: Api) -> None:
    reply = api.post("/appointment-requests", booking() | {"doctor_id": "nobody"})
    assert (reply.status, reply.error_code) == (404, "not_found")


def test_an_unknown_or_malformed_booking_request_id_is_404_or_400(api: Api) -> None:
    assert api.get(f"/appointment-requests/{UNKNOWN_ID}").status == 404
    reply = api.get("/appointment-requests/nope")
    assert (reply.status, reply.json["error"]["details"]["field"]) == (400, "request_id")


class _DownQueue:
    def enqueue(self, request: BookingRequest) -> None:
        raise TemporarilyUnavailable("the queue is throttled", retry_after_seconds=7)


def test_a_backend_outage_is_503_with_retry_after(clock: FixedClock) -> None:
    SLOT.app = build_app(Settings(), clock=clock, overrides={BookingRequestQueue: _DownQueue()})
    try:
        api = Api(handler)
        api.put("/doctors/dr-lima", LIMA_DOCTOR)
        reply = api.post("/appointment-requests", booking())
        assert (reply.status, reply.error_code) == (503, "temporarily_unavailable")
        assert reply.header("Retry-After") == "7"
    finally:
        SLOT.app = None


# Routing and unexpected errors -----------------------------------------------------------


def test_an_unknown_route_is_404_in_the_error_shape(api: Api) -> None:
    for path in ("/", "/patients", "/doctors", "/doctors/dr-lima/slots"):
        reply = api.get(path)
        assert (reply.status, reply.error_code) == (404, "not_found")


def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(api: Api) -> None:
    reply = api.call("PUT", "/appointments", body=booking())
    assert (reply.status, reply.error_code) == (405, "method_not_allowed")
    assert reply.header("Allow") == "GET, POST"
    assert api.delete("/doctors/dr-lima").status == 405
    assert api.get("/appointment-requests").status == 405


class _BrokenClock:
    def now(self) -> datetime:
        raise RuntimeError("clock hardware fault")


def test_an_unexpected_error_is_a_bare_500_without_a_stack_trace() -> None:
    SLOT.app = build_app(Settings(), clock=_BrokenClock())
    try:
        api = Api(handler)
        assert api.put("/doctors/dr-lima", LIMA_DOCTOR).status == 201
        reply = api.post("/appointments", booking())
        assert reply.status == 500
        assert reply.json == {
            "error": {"code": "internal_error", "message": "internal error", "details": {}}
        }
        assert "clock hardware fault" not in reply.text
    finally:
        SLOT.app = None


def test_a_malformed_event_is_a_500_in_the_error_shape(container: Any) -> None:
    response = handler({"httpMethod": "GET"}, None)
    assert response["statusCode"] == 500
    assert "Traceback" not in response["body"]
    assert set(json.loads(response["body"])) == {"error"}


def test_the_handler_runs_without_a_lambda_context(api: Api) -> None:
    response = handler(event("GET", "/doctors/dr-lima"), None)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json; charset=utf-8"


# Logs and metrics ------------------------------------------------------------------------


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


def test_a_whole_flow_logs_json_lines_without_any_patient_data(
    log_lines: io.StringIO, capsys: pytest.CaptureFixture[str], clock: FixedClock
) -> None:
    secrets = [ANA["name"], ANA["phone"], ANA["document_id"], "Ana", "987654321", "40404040"]
    broken_clock = _BrokenClock()
    SLOT.app = build_app(Settings(), clock=clock)
    try:
        api = Api(handler)
        api.put("/doctors/dr-lima", LIMA_DOCTOR)
        created = api.post(
            "/appointments", booking(notes="alergia"), headers={"Idempotency-Key": "k"}
        )
        path = f"/appointments/{created.json['appointment_id']}"
        api.post("/appointments", booking(), headers={"Idempotency-Key": "k"})
        api.post(
            "/appointments",
            booking(start=f"{MON}T10:00:00-05:00"),
            headers={"Idempotency-Key": "k"},
        )
        api.post("/appointments", booking())  # slot taken
        api.post("/appointments", booking() | {"patient": {**ANA, "phone": "987654321"}})
        api.post("/appointments", "{" + json.dumps(ANA))  # malformed JSON holding patient data
        api.patch(path, {"start": f"{MON}T11:00:00-05:00"}, headers={"If-Match": "1"})
        api.patch(path, {"start": f"{MON}T11:30:00-05:00"}, headers={"If-Match": "1"})
        api.post(path + "/status", {"status": "confirmed"})
        api.get("/appointments", query={"doctor_id": "dr-lima", "date": MON})
        api.get("/appointments", query={"country": "PE", "status": "confirmed"})
        request = api.post("/appointment-requests", booking(start=f"{MON}T15:00:00-05:00"))
        api.get(f"/appointment-requests/{request.json['request_id']}")
        api.delete(path)
        SLOT.app = build_app(Settings(), clock=broken_clock)
        api.put("/doctors/dr-lima", LIMA_DOCTOR)
        assert api.post("/appointments", booking()).status == 500
    finally:
        SLOT.app = None
    logged = log_lines.getvalue().splitlines()
    printed = capsys.readouterr()
    lines = logged + printed.out.splitlines() + printed.err.splitlines()
    assert len(logged) >= 17
    assert any('"unexpected error"' in line for line in logged)
    for line in logged:
        record = json.loads(line)
        assert isinstance(record, dict)
        assert record["correlation_id"]
    for line in lines:
        for secret in secrets:
            assert secret not in line, line


def test_each_request_is_logged_once_with_route_status_and_ids(
    api: Api, log_lines: io.StringIO, booked: dict[str, Any]
) -> None:
    created = json.loads(log_lines.getvalue().splitlines()[-1])
    assert (created["status"], created["appointment_id"]) == (201, booked["appointment_id"])
    api.post("/appointments", booking())
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert records[-1]["message"] == "request handled"
    assert (records[-1]["route"], records[-1]["status"], records[-1]["error_code"]) == (
        "/appointments",
        409,
        "slot_unavailable",
    )
    lookup = api.get(f"/appointments/{booked['appointment_id']}")
    assert lookup.status == 200
    last = json.loads(log_lines.getvalue().splitlines()[-1])
    assert last["route"] == "/appointments/{appointment_id}"
    assert last["appointment_id"] == booked["appointment_id"]


def test_each_booking_outcome_is_counted_as_an_emf_metric(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    api.post("/appointments", booking())
    api.post("/appointments", booking())
    api.post("/appointment-requests", booking(start=f"{MON}T10:00:00-05:00"))
    api.get("/doctors/dr-lima")  # books nothing, emits nothing, and does not fail
    metrics = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"') and "BookingOutcome" in line
    ]
    outcomes = [(m["operation"], m["outcome"], m["BookingOutcome"]) for m in metrics]
    assert outcomes == [
        ("book", "booked", [1.0]),
        ("book", "slot_unavailable", [1.0]),
        ("request_booking", "accepted", [1.0]),
    ]
    assert all(m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "citas" for m in metrics)


# Configuration ---------------------------------------------------------------------------


def test_settings_default_to_the_local_memory_backend() -> None:
    settings = Settings.from_env({})
    assert settings.backend == "memory"
    assert sorted(settings.countries) == ["CL", "PE"]
    assert (settings.table_name, settings.api_key) == ("citas-local", "local-dev-key")
    assert (settings.events_queue_url, dict(settings.booking_queue_urls)) == (None, {})


def test_settings_read_every_variable() -> None:
    settings = Settings.from_env(
        {
            "CITAS_BACKEND": "aws",
            "CITAS_COUNTRIES": "PE=America/Lima, CO=America/Bogota",
            "CITAS_TABLE_NAME": "citas-prod",
            "CITAS_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/events.fifo",
            "CITAS_BOOKING_QUEUE_URLS": "PE=http://localhost:9324/1/pe.fifo",
            "CITAS_API_KEY": "s3cret",
        }
    )
    assert settings.backend == "aws"
    assert settings.countries.default_zone("CO") == "America/Bogota"
    assert "CL" not in settings.countries
    assert settings.table_name == "citas-prod"
    assert settings.events_queue_url is not None
    assert dict(settings.booking_queue_urls) == {"PE": "http://localhost:9324/1/pe.fifo"}
    assert settings.api_key == "s3cret"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CITAS_BACKEND", "dynamo"),
        ("CITAS_COUNTRIES", "PE"),
        ("CITAS_COUNTRIES", "PE=America/Lima,PE=America/Lima"),
        ("CITAS_COUNTRIES", "Peru=America/Lima"),
        ("CITAS_COUNTRIES", "PE=America/Atlantis"),
        ("CITAS_TABLE_NAME", "a b"),
        ("CITAS_EVENTS_QUEUE_URL", "events.fifo"),
        ("CITAS_BOOKING_QUEUE_URLS", "PE=http://q/pe.fifo,AR=http://q/ar.fifo"),
        ("CITAS_BOOKING_QUEUE_URLS", "PE"),
    ],
)
def test_a_malformed_setting_is_a_value_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_an_empty_setting_counts_as_unset() -> None:
    assert Settings.from_env({"CITAS_BACKEND": "", "CITAS_API_KEY": " "}) == Settings.from_env({})


def test_time_moves_only_when_the_test_says_so(api: Api, clock: FixedClock) -> None:
    clock.advance(timedelta(days=6))
    reply = api.post("/appointments", booking(start=f"{MON}T15:00:00-05:00"))
    assert reply.json["created_at"] == "2030-01-07T12:00:00-05:00"


def test_importing_the_handler_builds_no_container_and_loads_no_aws_sdk() -> None:
    probe = (
        "import importlib, sys\n"
        "module = importlib.import_module('entrypoints.lambda.http_api')\n"
        "assert not module.default_app.built, 'app built at import'\n"
        # (Powertools itself touches the bare `botocore` package for its user agent.)
        "assert 'boto3' not in sys.modules, 'boto3 imported'\n"
        "from tests.unit.apigw import event\n"
        "assert module.handler(event('GET', '/doctors/x'), None)['statusCode'] == 404\n"
        "assert 'boto3' not in sys.modules, 'the memory backend loaded boto3'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITAS_")}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
