"""The HTTP API through its Lambda handler, in process, on the memory backend: the app, doctors,
availability, booking and body size."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import pytest

from adapters.memory.store import InMemoryBookingRequestQueue, InMemoryEventOutbox
from adapters.system import FixedClock
from domain.use_cases import Clinic
from entrypoints.bootstrap import LazyApp, app_from_env, build_app
from entrypoints.config import Settings
from tests.unit.apigw import event
from tests.unit.http_world import (
    ANA,
    HOURS,
    LIMA_DOCTOR,
    LUIS,
    MON,
    NOW,
    Api,
    booking,
    handler,
)

# Most requests book nothing and so flush no metric; Powertools warns about that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


# The app ---------------------------------------------------------------------------------


def test_the_app_holds_the_clinic_and_the_in_memory_pieces_the_local_server_drives() -> None:
    fixed = FixedClock(NOW)
    built = build_app(Settings(), clock=fixed)
    assert isinstance(built.for_clinic("demo"), Clinic)
    assert built.for_clinic("demo") is built.for_clinic("demo")
    assert built.clock is fixed
    assert built.for_clinic("demo").clock is fixed
    assert built.memory is not None
    assert built.request_queue is built.memory.request_queue
    assert isinstance(built.request_queue, InMemoryBookingRequestQueue)
    assert isinstance(built.outbox, InMemoryEventOutbox)


def test_a_lazy_app_is_built_once_on_first_use_and_kept(
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
        "buffer_minutes": 0,
        "min_notice_minutes": 60,
        "booking_horizon_days": 90,
        "works_on_holidays": False,
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
    # Without notice: the slot just after now is bookable, and listed.
    assert api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "min_notice_minutes": 0}).status == 200
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
        # Set by the confirmation cadence a day before an unconfirmed visit.
        "at_risk": False,
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
