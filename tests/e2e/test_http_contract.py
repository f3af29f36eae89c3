"""The HTTP contract of CONTRACT.md, checked over real HTTP against `citas serve`.

Dates are relative to the real now (the server uses the system clock), in the doctor's zone,
at least two days ahead. Every test makes its own doctors and patients, so tests share one
server without seeing each other's appointments.

Not provoked here: `503 temporarily_unavailable`. The memory backend is never throttled or
down, so it cannot answer 503; the unit tests of the handler and the AWS adapters cover it.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from .conftest import Api, Launcher, RunningServer

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONES = {"PE": "America/Lima", "CL": "America/Santiago"}
FORBIDDEN = {"message": "Forbidden"}


# Helpers -------------------------------------------------------------------------------


def every_day(start: str = "08:00", end: str = "20:00") -> dict[str, list[list[str]]]:
    return {day: [[start, end]] for day in WEEK}


def new_doctor(
    api: Api,
    country: str = "PE",
    *,
    slot_minutes: int = 30,
    working_hours: dict[str, list[list[str]]] | None = None,
) -> dict[str, Any]:
    doctor_id = f"e2e-{country.lower()}-{uuid.uuid4().hex[:12]}"
    response = api.put(
        f"/doctors/{doctor_id}",
        json={
            "name": f"Dra. Prueba {doctor_id}",
            "country": country,
            "slot_minutes": slot_minutes,
            "working_hours": working_hours or every_day(),
            # The real clock decides the dates: a holiday or the next DST change (up to six
            # months away) must not change what these tests book. test_schedules.py covers
            # the rules themselves.
            "works_on_holidays": True,
            "booking_horizon_days": 365,
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def new_patient(name: str = "Paciente de Prueba") -> dict[str, str]:
    return {"name": name, "phone": "+519" + "".join(random.choices("0123456789", k=8))}


def local_day(zone: str, days_ahead: int = 3) -> date:
    return (datetime.now(ZoneInfo(zone)) + timedelta(days=days_ahead)).date()


def at(day: date, hhmm: str, zone: str) -> str:
    return datetime.combine(day, clock_time.fromisoformat(hhmm), tzinfo=ZoneInfo(zone)).isoformat()


def booking(doctor: dict[str, Any], start: str, patient: dict[str, str] | None = None) -> dict:
    return {"doctor_id": doctor["doctor_id"], "patient": patient or new_patient(), "start": start}


def book(api: Api, doctor: dict[str, Any], start: str, **kwargs: Any) -> dict[str, Any]:
    response = api.post("/appointments", json=booking(doctor, start, **kwargs))
    assert response.status_code == 201, response.text
    return dict(response.json())


def free_starts(api: Api, doctor: dict[str, Any], day: date) -> list[str]:
    response = api.get(f"/doctors/{doctor['doctor_id']}/availability", params={"date": str(day)})
    assert response.status_code == 200, response.text
    return [slot["start"] for slot in response.json()["slots"]]


def day_list(api: Api, doctor: dict[str, Any], day: date) -> list[dict[str, Any]]:
    response = api.get("/appointments", params={"doctor_id": doctor["doctor_id"], "date": str(day)})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def assert_error(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert "Traceback" not in response.text


def next_offset_change(zone: str, after: date) -> date:
    """The first local date after `after` whose UTC offset at noon differs from the day before."""
    tz = ZoneInfo(zone)

    def offset(day: date) -> timedelta | None:
        return datetime.combine(day, clock_time(12), tzinfo=tz).utcoffset()

    day = after
    for _ in range(400):
        following = day + timedelta(days=1)
        if offset(following) != offset(day):
            return following
        day = following
    raise AssertionError(f"{zone} has no offset change within 400 days of {after}")


# The API key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/doctors/dra-rosa-quispe", None),
        ("GET", "/appointments?country=PE&status=requested", None),
        ("POST", "/appointments", {"doctor_id": "dra-rosa-quispe"}),
        ("DELETE", f"/appointments/{uuid.uuid4()}", None),
    ],
)
def test_a_request_without_an_api_key_is_forbidden_as_api_gateway_answers(
    api: Api, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = api.request(method, path, key=None, json=body)
    assert response.status_code == 403
    assert response.json() == FORBIDDEN


def test_a_request_with_a_wrong_api_key_is_forbidden(api: Api) -> None:
    for key in ("local-dev-key", api.api_key + "x", api.api_key.upper(), ""):
        response = api.get("/doctors/dra-rosa-quispe", key=key)
        assert response.status_code == 403, key
        assert response.json() == FORBIDDEN


def test_the_configured_api_key_is_printed_at_start_up_and_accepted(
    server: RunningServer, api: Api
) -> None:
    assert server.banner.startswith(f"citas: serving {server.base_url} (backend memory)")
    assert server.api_key == "e2e-secret-key"
    assert api.get("/doctors/dra-rosa-quispe").status_code == 200


# Doctors -------------------------------------------------------------------------------


def test_the_two_demo_doctors_are_registered_at_start_up(api: Api) -> None:
    rosa = api.get("/doctors/dra-rosa-quispe").json()
    assert rosa["name"] == "Dra. Rosa Quispe"
    assert (rosa["country"], rosa["time_zone"], rosa["slot_minutes"]) == ("PE", "America/Lima", 30)
    assert rosa["working_hours"]["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert rosa["working_hours"]["sat"] == [["09:00", "13:00"]]
    assert "sun" not in rosa["working_hours"] or rosa["working_hours"]["sun"] == []
    matias = api.get("/doctors/dr-matias-soto").json()
    assert matias["name"] == "Dr. Matías Soto"
    assert (matias["country"], matias["time_zone"], matias["slot_minutes"]) == (
        "CL",
        "America/Santiago",
        20,
    )
    assert matias["working_hours"]["fri"] == [["08:30", "12:30"], ["15:00", "19:00"]]


def test_putting_a_doctor_creates_it_with_defaults_then_replaces_it(api: Api) -> None:
    doctor_id = f"e2e-doc-{uuid.uuid4().hex[:10]}"
    body = {"name": "Dr. Uno", "country": "CL", "working_hours": {"mon": [["09:00", "12:00"]]}}
    created = api.put(f"/doctors/{doctor_id}", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["time_zone"] == "America/Santiago"
    assert created.json()["slot_minutes"] == 30
    replaced = api.put(
        f"/doctors/{doctor_id}", json={**body, "name": "Dr. Dos", "slot_minutes": 20}
    )
    assert replaced.status_code == 200, replaced.text
    fetched = api.get(f"/doctors/{doctor_id}")
    assert fetched.status_code == 200
    assert fetched.json()["doctor_id"] == doctor_id
    assert (fetched.json()["name"], fetched.json()["slot_minutes"]) == ("Dr. Dos", 20)


def test_an_unknown_doctor_is_404_not_found(api: Api) -> None:
    assert_error(api.get("/doctors/nobody-here"), 404, "not_found")
    assert_error(
        api.get("/doctors/nobody-here/availability", params={"date": "2030-01-07"}),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Dr. X", "country": "AR", "working_hours": {}},
        {"name": "Dr. X", "country": "PE", "working_hours": {"mon": [["13:00", "09:00"]]}},
        {"name": "Dr. X", "country": "PE", "slot_minutes": 25, "working_hours": {}},
        {"name": "Dr. X", "country": "PE", "time_zone": "Mars/Olympus", "working_hours": {}},
        {"name": "Dr. X", "country": "PE", "working_hours": {}, "color": "blue"},
        {"country": "PE", "working_hours": {}},
    ],
    ids=["unserved-country", "backwards-hours", "bad-slot", "bad-zone", "unknown-field", "no-name"],
)
def test_an_invalid_doctor_is_400_validation_error(api: Api, body: dict[str, Any]) -> None:
    assert_error(api.put("/doctors/e2e-invalid", json=body), 400, "validation_error")


def test_availability_lists_the_free_future_slots_of_the_local_day_in_order(api: Api) -> None:
    doctor = new_doctor(api, working_hours=every_day("09:00", "12:00"))
    day = local_day("America/Lima")
    response = api.get(f"/doctors/{doctor['doctor_id']}/availability", params={"date": str(day)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["doctor_id"], body["date"], body["time_zone"]) == (
        doctor["doctor_id"],
        str(day),
        "America/Lima",
    )
    expected = [at(day, hhmm, "America/Lima") for hhmm in ("09:00", "09:30", "10:00", "10:30")]
    expected += [at(day, hhmm, "America/Lima") for hhmm in ("11:00", "11:30")]
    assert [slot["start"] for slot in body["slots"]] == expected
    assert body["slots"][0]["end"] == at(day, "09:30", "America/Lima")
    book(api, doctor, at(day, "09:30", "America/Lima"))
    assert at(day, "09:30", "America/Lima") not in free_starts(api, doctor, day)
    assert len(free_starts(api, doctor, day)) == 5


def test_availability_without_a_date_is_400_validation_error(api: Api) -> None:
    assert_error(api.get("/doctors/dra-rosa-quispe/availability"), 400, "validation_error")
    assert_error(
        api.get("/doctors/dra-rosa-quispe/availability", params={"date": "07/01/2030"}),
        400,
        "validation_error",
    )


# Booking -------------------------------------------------------------------------------


def test_booking_answers_201_with_location_and_a_requested_appointment(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    patient = {**new_patient("Ana Pérez"), "document_id": "DNI-12345678"}
    body = {**booking(doctor, at(day, "10:00", "America/Lima"), patient), "notes": "Control"}
    response = api.post("/appointments", json=body)
    assert response.status_code == 201, response.text
    appointment = response.json()
    assert response.headers["Location"] == f"/appointments/{appointment['appointment_id']}"
    assert uuid.UUID(appointment["appointment_id"]).version == 7
    assert appointment["doctor_id"] == doctor["doctor_id"]
    assert appointment["country"] == "PE"
    assert appointment["patient"] == patient
    assert appointment["start"] == at(day, "10:00", "America/Lima")
    assert appointment["end"] == at(day, "10:30", "America/Lima")
    assert appointment["duration_minutes"] == 30
    assert (appointment["status"], appointment["version"]) == ("requested", 1)
    assert appointment["notes"] == "Control"
    fetched = api.get(f"/appointments/{appointment['appointment_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == appointment


def test_an_instant_given_in_utc_is_answered_in_the_doctors_local_time(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    lima_ten = datetime.combine(day, clock_time(10), tzinfo=ZoneInfo("America/Lima"))
    in_utc = lima_ten.astimezone(ZoneInfo("UTC")).isoformat()
    appointment = book(api, doctor, in_utc)
    assert appointment["start"] == lima_ten.isoformat()
    assert appointment["start"].endswith("-05:00")


def test_a_longer_visit_takes_several_slots(api: Api) -> None:
    doctor = new_doctor(api, slot_minutes=20)
    day = local_day("America/Lima")
    body = {**booking(doctor, at(day, "09:00", "America/Lima")), "duration_minutes": 60}
    response = api.post("/appointments", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["end"] == at(day, "10:00", "America/Lima")
    free = free_starts(api, doctor, day)
    assert at(day, "09:40", "America/Lima") not in free
    assert at(day, "10:00", "America/Lima") in free


def _valid_body(api: Api) -> dict[str, Any]:
    doctor = new_doctor(api)
    return booking(doctor, at(local_day("America/Lima"), "10:00", "America/Lima"))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b.pop("start"), id="missing-start"),
        pytest.param(lambda b: b.update(colour="blue"), id="unknown-field"),
        pytest.param(lambda b: b.update(start=b["start"][:19]), id="naive-start"),
        pytest.param(lambda b: b.update(start="mañana a las diez"), id="bad-start"),
        pytest.param(lambda b: b["patient"].update(phone="987654321"), id="phone-not-e164"),
        pytest.param(lambda b: b["patient"].pop("name"), id="missing-patient-name"),
        pytest.param(lambda b: b["patient"].update(age=30), id="unknown-patient-field"),
        pytest.param(lambda b: b.update(notes="x" * 501), id="notes-too-long"),
        pytest.param(lambda b: b.update(duration_minutes="30"), id="duration-not-integer"),
        pytest.param(lambda b: b.update(duration_minutes=300), id="duration-over-240"),
        pytest.param(lambda b: b.update(doctor_id=["x"]), id="doctor-id-not-string"),
    ],
)
def test_a_malformed_booking_is_400_validation_error(api: Api, mutate: Any) -> None:
    body = _valid_body(api)
    mutate(body)
    assert_error(api.post("/appointments", json=body), 400, "validation_error")


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[]", b'"text"', b"", b"\xff\xfe"],
    ids=["bad-json", "array", "string", "empty", "not-utf8"],
)
def test_a_body_that_is_not_a_json_object_is_400_validation_error(api: Api, raw: bytes) -> None:
    response = api.post("/appointments", data=raw, headers={"Content-Type": "application/json"})
    assert_error(response, 400, "validation_error")


def test_a_booking_for_an_unknown_doctor_is_404_not_found(api: Api) -> None:
    start = at(local_day("America/Lima"), "10:00", "America/Lima")
    response = api.post("/appointments", json=booking({"doctor_id": "nobody-here"}, start))
    assert_error(response, 404, "not_found")


def test_a_taken_slot_is_409_slot_unavailable(api: Api) -> None:
    doctor = new_doctor(api)
    start = at(local_day("America/Lima"), "11:00", "America/Lima")
    book(api, doctor, start)
    assert_error(api.post("/appointments", json=booking(doctor, start)), 409, "slot_unavailable")


def test_a_slot_overlapping_a_longer_visit_is_409_slot_unavailable(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    body = {**booking(doctor, at(day, "09:00", "America/Lima")), "duration_minutes": 90}
    assert api.post("/appointments", json=body).status_code == 201
    later = booking(doctor, at(day, "10:00", "America/Lima"))
    assert_error(api.post("/appointments", json=later), 409, "slot_unavailable")


def test_a_patient_booked_elsewhere_at_that_time_is_409_patient_double_booked(api: Api) -> None:
    first, second = new_doctor(api), new_doctor(api)
    patient = new_patient()
    start = at(local_day("America/Lima"), "12:00", "America/Lima")
    book(api, first, start, patient=patient)
    response = api.post("/appointments", json=booking(second, start, patient))
    assert_error(response, 409, "patient_double_booked")


def test_a_start_in_the_past_is_422_start_in_past(api: Api) -> None:
    doctor = new_doctor(api, working_hours=every_day("00:00", "24:00"))
    past = datetime.now(ZoneInfo("America/Lima")) - timedelta(days=1)
    start = past.replace(minute=0, second=0, microsecond=0).isoformat()
    assert_error(api.post("/appointments", json=booking(doctor, start)), 422, "start_in_past")


def test_a_start_outside_working_hours_is_422_outside_working_hours(api: Api) -> None:
    doctor = new_doctor(api, working_hours=every_day("08:00", "20:00"))
    day = local_day("America/Lima")
    for hhmm in ("07:30", "20:00", "03:00"):
        response = api.post("/appointments", json=booking(doctor, at(day, hhmm, "America/Lima")))
        assert_error(response, 422, "outside_working_hours")
    late = {**booking(doctor, at(day, "19:30", "America/Lima")), "duration_minutes": 60}
    assert_error(api.post("/appointments", json=late), 422, "outside_working_hours")


def test_a_start_off_the_slot_grid_is_422_invalid_slot(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    off_grid = booking(doctor, at(day, "10:10", "America/Lima"))
    assert_error(api.post("/appointments", json=off_grid), 422, "invalid_slot")
    odd_length = {**booking(doctor, at(day, "10:00", "America/Lima")), "duration_minutes": 45}
    assert_error(api.post("/appointments", json=odd_length), 422, "invalid_slot")


def test_a_body_over_16_kib_is_413_payload_too_large(api: Api) -> None:
    body = {**_valid_body(api), "notes": "x" * (17 * 1024)}
    assert_error(api.post("/appointments", json=body), 413, "payload_too_large")
    assert_error(
        api.put("/doctors/e2e-too-big", json={"name": "x" * (17 * 1024)}),
        413,
        "payload_too_large",
    )


def test_a_body_over_1_mib_is_refused_with_413_before_it_is_read(api: Api) -> None:
    response = api.post(
        "/appointments",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")
    assert api.get("/doctors/dra-rosa-quispe").status_code == 200


# Idempotency ---------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_returns_the_same_appointment(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    body = booking(doctor, at(day, "09:00", "America/Lima"))
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    first = api.post("/appointments", json=body, headers=key)
    again = api.post("/appointments", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert [a["appointment_id"] for a in day_list(api, doctor, day)] == [
        first.json()["appointment_id"]
    ]


def test_an_idempotency_key_reused_with_another_body_is_422(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    first = api.post(
        "/appointments", json=booking(doctor, at(day, "09:00", "America/Lima")), headers=key
    )
    assert first.status_code == 201, first.text
    other = booking(doctor, at(day, "09:30", "America/Lima"))
    assert_error(api.post("/appointments", json=other, headers=key), 422, "idempotency_key_reused")
    assert len(day_list(api, doctor, day)) == 1


# Concurrency ---------------------------------------------------------------------------


def test_twenty_concurrent_clients_booking_one_slot_get_one_201_and_nineteen_409(
    server: RunningServer,
) -> None:
    setup = server.api()
    doctor = new_doctor(setup)
    day = local_day("America/Lima")
    start = at(day, "10:00", "America/Lima")
    clients = 20
    barrier = threading.Barrier(clients)

    def attempt(_: int) -> requests.Response:
        body = booking(doctor, start)
        with requests.Session() as session:
            request = requests.Request(
                "POST",
                server.base_url + "/appointments",
                json=body,
                headers={"x-api-key": server.api_key},
            )
            prepared = session.prepare_request(request)
            barrier.wait(timeout=10)
            return session.send(prepared, timeout=30)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        responses = list(pool.map(attempt, range(clients)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (clients - 1), statuses
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409, "slot_unavailable")
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert [a["appointment_id"] for a in day_list(setup, doctor, day)] == [winner["appointment_id"]]
    setup.close()


# Changes -------------------------------------------------------------------------------


def test_confirming_a_requested_appointment_increments_its_version(api: Api) -> None:
    doctor = new_doctor(api)
    appointment = book(api, doctor, at(local_day("America/Lima"), "09:00", "America/Lima"))
    response = api.post(
        f"/appointments/{appointment['appointment_id']}/status", json={"status": "confirmed"}
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["version"]) == ("confirmed", 2)


def test_rescheduling_frees_the_old_time_for_another_patient(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    nine, ten = at(day, "09:00", "America/Lima"), at(day, "10:00", "America/Lima")
    appointment = book(api, doctor, nine)
    path = f"/appointments/{appointment['appointment_id']}"
    assert api.post(path + "/status", json={"status": "confirmed"}).status_code == 200
    moved = api.patch(path, json={"start": ten})
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == ten
    assert (moved.json()["status"], moved.json()["version"]) == ("requested", 3)
    free = free_starts(api, doctor, day)
    assert nine in free
    assert ten not in free
    book(api, doctor, nine)
    assert_error(api.post("/appointments", json=booking(doctor, ten)), 409, "slot_unavailable")


def test_rescheduling_onto_a_taken_time_changes_nothing(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    nine, ten = at(day, "09:00", "America/Lima"), at(day, "10:00", "America/Lima")
    appointment = book(api, doctor, nine)
    book(api, doctor, ten)
    path = f"/appointments/{appointment['appointment_id']}"
    assert_error(api.patch(path, json={"start": ten}), 409, "slot_unavailable")
    assert api.get(path).json() == appointment
    assert nine not in free_starts(api, doctor, day)


def test_rescheduling_to_the_past_is_422_start_in_past(api: Api) -> None:
    doctor = new_doctor(api, working_hours=every_day("00:00", "24:00"))
    appointment = book(api, doctor, at(local_day("America/Lima"), "09:00", "America/Lima"))
    past = datetime.now(ZoneInfo("America/Lima")) - timedelta(days=1)
    start = past.replace(minute=0, second=0, microsecond=0).isoformat()
    response = api.patch(f"/appointments/{appointment['appointment_id']}", json={"start": start})
    assert_error(response, 422, "start_in_past")


def test_cancelling_with_delete_frees_the_time_for_another_patient(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    nine = at(day, "09:00", "America/Lima")
    appointment = book(api, doctor, nine)
    response = api.delete(f"/appointments/{appointment['appointment_id']}")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["version"]) == ("cancelled", 2)
    assert api.get(f"/appointments/{appointment['appointment_id']}").json()["status"] == (
        "cancelled"
    )
    assert nine in free_starts(api, doctor, day)
    book(api, doctor, nine)


def test_cancelling_a_cancelled_appointment_again_answers_it_unchanged(api: Api) -> None:
    doctor = new_doctor(api)
    appointment = book(api, doctor, at(local_day("America/Lima"), "09:00", "America/Lima"))
    path = f"/appointments/{appointment['appointment_id']}"
    first = api.delete(path)
    again = api.delete(path)
    assert first.status_code == again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.json()["version"] == 2


def test_cancelling_through_the_status_endpoint_frees_the_time_too(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    nine = at(day, "09:00", "America/Lima")
    appointment = book(api, doctor, nine)
    response = api.post(
        f"/appointments/{appointment['appointment_id']}/status",
        json={"status": "cancelled", "reason": "el paciente viaja"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert nine in free_starts(api, doctor, day)
    book(api, doctor, nine)


def test_a_change_the_status_machine_forbids_is_409_invalid_transition(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    future = book(api, doctor, at(day, "09:00", "America/Lima"))
    path = f"/appointments/{future['appointment_id']}"
    # completed and no_show only once the start has passed; requested cannot complete.
    assert_error(
        api.post(path + "/status", json={"status": "completed"}), 409, "invalid_transition"
    )
    assert api.post(path + "/status", json={"status": "confirmed"}).status_code == 200
    assert_error(api.post(path + "/status", json={"status": "no_show"}), 409, "invalid_transition")
    assert api.delete(path).status_code == 200
    assert_error(
        api.post(path + "/status", json={"status": "confirmed"}), 409, "invalid_transition"
    )
    later = at(day, "11:00", "America/Lima")
    assert_error(api.patch(path, json={"start": later}), 409, "invalid_transition")


def test_a_bad_status_change_body_is_400_validation_error(api: Api) -> None:
    doctor = new_doctor(api)
    appointment = book(api, doctor, at(local_day("America/Lima"), "09:00", "America/Lima"))
    path = f"/appointments/{appointment['appointment_id']}/status"
    for body in ({"status": "requested"}, {"status": "done"}, {}, {"status": "confirmed", "x": 1}):
        assert_error(api.post(path, json=body), 400, "validation_error")


def test_a_stale_if_match_is_412_version_conflict_and_changes_nothing(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    appointment = book(api, doctor, at(day, "09:00", "America/Lima"))
    path = f"/appointments/{appointment['appointment_id']}"
    confirmed = api.post(path + "/status", json={"status": "confirmed"}, headers={"If-Match": "1"})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["version"] == 2
    stale = {"If-Match": "1"}
    assert_error(
        api.post(path + "/status", json={"status": "cancelled"}, headers=stale),
        412,
        "version_conflict",
    )
    assert_error(
        api.patch(path, json={"start": at(day, "10:00", "America/Lima")}, headers=stale),
        412,
        "version_conflict",
    )
    current = api.get(path).json()
    assert (current["status"], current["version"], current["start"]) == (
        "confirmed",
        2,
        appointment["start"],
    )
    fresh = api.patch(
        path, json={"start": at(day, "10:00", "America/Lima")}, headers={"If-Match": "2"}
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["version"] == 3


def test_an_unknown_appointment_or_request_is_404_not_found(api: Api) -> None:
    unknown = str(uuid.uuid4())
    assert_error(api.get(f"/appointments/{unknown}"), 404, "not_found")
    assert_error(api.delete(f"/appointments/{unknown}"), 404, "not_found")
    assert_error(
        api.post(f"/appointments/{unknown}/status", json={"status": "confirmed"}), 404, "not_found"
    )
    start = at(local_day("America/Lima"), "09:00", "America/Lima")
    assert_error(api.patch(f"/appointments/{unknown}", json={"start": start}), 404, "not_found")
    assert_error(api.get(f"/appointment-requests/{unknown}"), 404, "not_found")


# Lists ---------------------------------------------------------------------------------


def test_the_doctor_day_list_pages_through_five_appointments_two_at_a_time(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima", days_ahead=4)
    # Booked out of order: the list must come back by start time.
    times = ["11:00", "09:00", "13:30", "10:00", "09:30"]
    booked = {book(api, doctor, at(day, t, "America/Lima"))["appointment_id"]: t for t in times}
    book(api, doctor, at(day + timedelta(days=1), "09:00", "America/Lima"))  # another day
    seen: list[dict[str, Any]] = []
    tokens: list[str] = []
    params: dict[str, Any] = {"doctor_id": doctor["doctor_id"], "date": str(day), "limit": 2}
    for _ in range(10):
        response = api.get("/appointments", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen.extend(page["items"])
        if page["next_token"] is None:
            break
        assert len(page["items"]) == 2
        assert page["next_token"] not in tokens
        tokens.append(page["next_token"])
        params["next_token"] = page["next_token"]
    assert len(tokens) == 2
    assert [len(seen[:2]), len(seen[2:4]), len(seen[4:])] == [2, 2, 1]
    ids = [a["appointment_id"] for a in seen]
    assert len(ids) == len(set(ids)) == 5
    assert set(ids) == set(booked)
    assert [a["start"] for a in seen] == [at(day, t, "America/Lima") for t in sorted(times)]


def test_a_next_token_of_other_filters_or_garbage_is_400_validation_error(api: Api) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    for hhmm in ("09:00", "09:30", "10:00"):
        book(api, doctor, at(day, hhmm, "America/Lima"))
    first = api.get(
        "/appointments", params={"doctor_id": doctor["doctor_id"], "date": str(day), "limit": 1}
    ).json()
    token = first["next_token"]
    assert token
    other_day = {"doctor_id": doctor["doctor_id"], "date": str(day + timedelta(days=1))}
    assert_error(
        api.get("/appointments", params={**other_day, "next_token": token}), 400, "validation_error"
    )
    garbage = {"doctor_id": doctor["doctor_id"], "date": str(day), "next_token": "not-a-token"}
    assert_error(api.get("/appointments", params=garbage), 400, "validation_error")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"doctor_id": "dra-rosa-quispe"},
        {"date": "2030-01-07"},
        {"country": "PE"},
        {"status": "requested"},
        {"doctor_id": "dra-rosa-quispe", "date": "2030-01-07", "country": "PE"},
        {"doctor_id": "dra-rosa-quispe", "date": "2030-01-07", "from": "2030-01-07T00:00:00Z"},
        {"doctor_id": "dra-rosa-quispe", "date": "2030-01-07", "limit": 0},
        {"doctor_id": "dra-rosa-quispe", "date": "2030-01-07", "limit": 101},
        {"country": "PE", "status": "waiting"},
        {"country": "PE", "status": "requested", "from": "2030-01-07T09:00:00"},
    ],
    ids=[
        "no-filter",
        "doctor-without-date",
        "date-without-doctor",
        "country-without-status",
        "status-without-country",
        "both-combinations",
        "from-with-doctor-day",
        "limit-0",
        "limit-101",
        "unknown-status",
        "naive-from",
    ],
)
def test_any_other_list_filter_combination_is_400_validation_error(
    api: Api, params: dict[str, Any]
) -> None:
    assert_error(api.get("/appointments", params=params), 400, "validation_error")


def test_the_country_status_list_filters_by_status_and_start_range(api: Api) -> None:
    doctor = new_doctor(api, country="CL")
    zone = "America/Santiago"
    day = local_day(zone, days_ahead=5)
    first = book(api, doctor, at(day, "09:00", zone))
    second = book(api, doctor, at(day, "09:30", zone))
    path = f"/appointments/{second['appointment_id']}/status"
    assert api.post(path, json={"status": "confirmed"}).status_code == 200

    def listed(status: str, start_from: str, start_to: str) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {
            "country": "CL",
            "status": status,
            "from": start_from,
            "to": start_to,
            "limit": 100,
        }
        while True:
            page = api.get("/appointments", params=params)
            assert page.status_code == 200, page.text
            starts = [a["start"] for a in page.json()["items"]]
            assert starts == sorted(starts, key=datetime.fromisoformat)
            assert all(a["status"] == status for a in page.json()["items"])
            ids += [a["appointment_id"] for a in page.json()["items"]]
            if page.json()["next_token"] is None:
                return ids
            params["next_token"] = page.json()["next_token"]

    whole_day = (at(day, "00:00", zone), at(day + timedelta(days=1), "00:00", zone))
    assert first["appointment_id"] in listed("requested", *whole_day)
    assert second["appointment_id"] not in listed("requested", *whole_day)
    assert second["appointment_id"] in listed("confirmed", *whole_day)
    # from is inclusive, to exclusive.
    only_nine = listed("requested", at(day, "09:00", zone), at(day, "09:30", zone))
    assert first["appointment_id"] in only_nine
    assert first["appointment_id"] not in listed(
        "requested", at(day, "08:00", zone), at(day, "09:00", zone)
    )


# Time zones ----------------------------------------------------------------------------


def test_a_booking_across_a_santiago_daylight_saving_change_keeps_the_local_wall_time(
    api: Api,
) -> None:
    zone = "America/Santiago"
    change = next_offset_change(zone, local_day(zone, days_ahead=2))
    before, after = change - timedelta(days=1), change + timedelta(days=1)
    doctor = new_doctor(api, country="CL", working_hours=every_day("08:00", "20:00"))
    patient = new_patient()
    booked_before = book(api, doctor, at(before, "10:00", zone), patient=patient)
    booked_after = book(api, doctor, at(after, "10:00", zone), patient=patient)
    start_before = datetime.fromisoformat(booked_before["start"])
    start_after = datetime.fromisoformat(booked_after["start"])
    offsets = {booked_before["start"][-6:], booked_after["start"][-6:]}
    assert offsets == {"-03:00", "-04:00"}, (booked_before["start"], booked_after["start"])
    assert start_before.utcoffset() != start_after.utcoffset()
    assert start_before.time() == start_after.time() == clock_time(10)
    assert (start_before.date(), start_after.date()) == (before, after)
    first_free_before = free_starts(api, doctor, before)[0]
    first_free_after = free_starts(api, doctor, after)[0]
    assert first_free_before[11:19] == first_free_after[11:19] == "08:00:00"
    assert first_free_before[-6:] != first_free_after[-6:]


# Asynchronous booking ------------------------------------------------------------------


def _wait_for_outcome(api: Api, request_id: str, seconds: float = 2.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        response = api.get(f"/appointment-requests/{request_id}")
        assert response.status_code == 200, response.text
        body = dict(response.json())
        if body["status"] != "pending" or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_an_appointment_request_is_accepted_at_once_and_booked_within_two_seconds(
    api: Api,
) -> None:
    doctor = new_doctor(api)
    start = at(local_day("America/Lima"), "15:00", "America/Lima")
    patient = new_patient()
    accepted = api.post("/appointment-requests", json=booking(doctor, start, patient))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "pending"
    request_id = accepted.json()["request_id"]
    assert set(accepted.json()) == {"request_id", "status"}
    outcome = _wait_for_outcome(api, request_id)
    assert outcome["status"] == "booked", outcome
    assert outcome["request_id"] == request_id
    appointment = api.get(f"/appointments/{outcome['appointment_id']}").json()
    assert (appointment["start"], appointment["patient"]) == (start, patient)
    assert appointment["status"] == "requested"


def test_an_appointment_request_for_a_taken_slot_ends_rejected_and_books_nothing(
    api: Api,
) -> None:
    doctor = new_doctor(api)
    day = local_day("America/Lima")
    start = at(day, "16:00", "America/Lima")
    taken = book(api, doctor, start)
    accepted = api.post("/appointment-requests", json=booking(doctor, start))
    assert accepted.status_code == 202, accepted.text
    outcome = _wait_for_outcome(api, accepted.json()["request_id"])
    assert outcome["status"] == "rejected", outcome
    assert outcome["error"]["code"] == "slot_unavailable"
    assert "appointment_id" not in outcome
    assert [a["appointment_id"] for a in day_list(api, doctor, day)] == [taken["appointment_id"]]


def test_a_malformed_appointment_request_is_refused_at_once(api: Api) -> None:
    doctor = new_doctor(api)
    naive = at(local_day("America/Lima"), "09:00", "America/Lima")[:19]
    assert_error(
        api.post("/appointment-requests", json=booking(doctor, naive)), 400, "validation_error"
    )
    start = at(local_day("America/Lima"), "09:00", "America/Lima")
    assert_error(
        api.post("/appointment-requests", json=booking({"doctor_id": "nobody-here"}, start)),
        404,
        "not_found",
    )


# The command ---------------------------------------------------------------------------


def test_the_console_script_without_demo_serves_no_doctors_and_stops_on_ctrl_c(
    start_citas: Launcher,
) -> None:
    quiet = start_citas("--no-demo")
    client = quiet.api()
    assert quiet.api_key == "local-dev-key"
    assert_error(client.get("/doctors/dra-rosa-quispe"), 404, "not_found")
    client.close()
    assert quiet.stop(signal.SIGINT) == 0
