"""The HTTP API on the memory backend: reading, listing and changing appointments, and the
asynchronous booking requests."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from adapters.system import FixedClock
from domain.booking_request import BookingRequest
from domain.errors import TemporarilyUnavailable
from entrypoints.bootstrap import build_app
from entrypoints.config import Settings
from ports.messaging import BookingRequestQueue
from tests.unit.http_world import (
    ANA,
    LIMA_DOCTOR,
    LUIS,
    MON,
    SLOT,
    UNKNOWN_ID,
    Api,
    booking,
    handler,
    the_clinic,
)

# Most requests book nothing and so flush no metric; Powertools warns about that, harmlessly.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


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


def test_at_risk_lists_only_what_the_cadence_marked_for_staff_to_call(
    api: Api, container: Any, clock: FixedClock
) -> None:
    ids = _book_many(api, 3)
    query = {"country": "PE", "status": "requested", "at_risk": "true"}
    assert api.get("/appointments", query=query).json["items"] == []
    # A day before the first visits: still unconfirmed, they are at risk.
    clock.set(datetime.fromisoformat(f"{MON}T09:00:00-05:00") - timedelta(hours=24))
    assert container.for_clinic("demo").run_cadence()
    at_risk = api.get("/appointments", query=query).json["items"]
    assert [a["appointment_id"] for a in at_risk] and all(a["at_risk"] for a in at_risk)
    confirmed = at_risk[0]["appointment_id"]
    api.post(f"/appointments/{confirmed}/status", {"status": "confirmed"})
    assert confirmed not in [
        a["appointment_id"] for a in api.get("/appointments", query=query).json["items"]
    ]
    assert api.get(f"/appointments/{confirmed}").json["at_risk"] is False
    everything = api.get("/appointments", query={"country": "PE", "status": "requested"})
    assert {a["appointment_id"] for a in everything.json["items"]} <= set(ids)


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
        {"doctor_id": "dr-lima", "date": MON, "at_risk": "true"},
        {"country": "PE", "status": "requested", "at_risk": "yes"},
        {"country": "PE", "status": "requested", "at_risk": "TRUE"},
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
