"""The schedule routes over the Lambda HTTP handler: doctor rules, time off, holidays."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.http_world import LIMA_DOCTOR, MON, Api, booking

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

REASON = "congreso de cardiología"
BLOCK = {"start": f"{MON}T10:00:00-05:00", "end": f"{MON}T12:00:00-05:00", "reason": REASON}
TIME_OFF = "/doctors/dr-lima/time-off/congreso"


def test_the_rules_are_put_and_read_with_the_doctor(api: Api) -> None:
    rules = {
        "buffer_minutes": 15,
        "min_notice_minutes": 120,
        "booking_horizon_days": 30,
        "works_on_holidays": True,
    }
    reply = api.put("/doctors/dr-lima", {**LIMA_DOCTOR, **rules})
    assert reply.status == 200
    assert {k: reply.json[k] for k in rules} == rules
    assert {k: api.get("/doctors/dr-lima").json[k] for k in rules} == rules


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("buffer_minutes", 61),
        ("buffer_minutes", "10"),
        ("min_notice_minutes", -1),
        ("min_notice_minutes", 10081),
        ("booking_horizon_days", 0),
        ("booking_horizon_days", 1.5),
        ("works_on_holidays", "yes"),
        ("works_on_holidays", None),
    ],
)
def test_a_rule_out_of_range_is_a_400_and_the_doctor_is_unchanged(
    api: Api, field: str, value: object
) -> None:
    reply = api.put("/doctors/dr-lima", {**LIMA_DOCTOR, field: value})
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == field
    assert api.get("/doctors/dr-lima").json["buffer_minutes"] == 0


def test_time_off_is_created_listed_honoured_and_removed(api: Api) -> None:
    created = api.put(TIME_OFF, BLOCK)
    assert created.status == 201
    assert created.json == {"time_off_id": "congreso", "doctor_id": "dr-lima", **BLOCK}
    assert api.put(TIME_OFF, BLOCK).status == 200

    listed = api.get("/doctors/dr-lima/time-off", query={"from": MON, "to": MON})
    assert listed.status == 200
    assert listed.json == {"items": [created.json], "next_token": None}

    inside = api.post("/appointments", booking(f"{MON}T11:00:00-05:00"))
    assert (inside.status, inside.error_code) == (409, "doctor_unavailable")
    assert inside.json["error"]["details"] == {"time_off_id": "congreso"}  # never the reason
    assert REASON not in inside.text
    slots = api.get("/doctors/dr-lima/availability", query={"date": MON}).json["slots"]
    assert f"{MON}T11:00:00-05:00" not in [s["start"] for s in slots]

    removed = api.delete(TIME_OFF)
    assert (removed.status, removed.json) == (200, created.json)
    assert api.delete(TIME_OFF).status == 404
    assert api.post("/appointments", booking(f"{MON}T11:00:00-05:00")).status == 201


def test_time_off_over_a_booking_is_a_409_naming_it(api: Api) -> None:
    booked = api.post("/appointments", booking(f"{MON}T11:00:00-05:00")).json
    reply = api.put(TIME_OFF, BLOCK)
    assert (reply.status, reply.error_code) == (409, "time_off_conflict")
    assert reply.json["error"]["details"]["appointment_ids"] == [booked["appointment_id"]]
    assert reply.json["error"]["details"]["count"] == 1
    listed = api.get("/doctors/dr-lima/time-off", query={"from": MON, "to": MON})
    assert listed.json["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BLOCK, "end": BLOCK["start"]}, "end"),
        ({**BLOCK, "end": f"{MON}T09:00:00-05:00"}, "end"),
        ({**BLOCK, "end": "2030-04-08T10:00:01-05:00"}, "end"),
        ({**BLOCK, "start": f"{MON}T10:00:00"}, "start"),
        ({**BLOCK, "colour": "red"}, "colour"),
        ({**BLOCK, "reason": None}, "reason"),
        ({**BLOCK, "reason": "x" * 201}, "reason"),
        ({"start": BLOCK["start"]}, "end"),
    ],
)
def test_a_malformed_block_is_a_400_and_nothing_is_stored(
    api: Api, body: dict[str, Any], field: str
) -> None:
    reply = api.put(TIME_OFF, body)
    assert (reply.status, reply.error_code) == (400, "validation_error")
    assert reply.json["error"]["details"]["field"] == field
    assert api.get("/doctors/dr-lima/time-off", query={"from": MON, "to": MON}).json["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"from": MON},
        {"to": MON},
        {"from": MON, "to": "2030-01-06"},
        {"from": MON, "to": MON, "limit": "0"},
        {"from": MON, "to": MON, "next_token": "forged.token"},
        {"from": MON, "to": MON, "colour": "red"},
    ],
)
def test_a_bad_time_off_list_query_is_a_400(api: Api, query: dict[str, str]) -> None:
    reply = api.get("/doctors/dr-lima/time-off", query=query)
    assert (reply.status, reply.error_code) == (400, "validation_error")


def test_time_off_of_an_unknown_doctor_is_a_404(api: Api) -> None:
    assert api.put("/doctors/nobody/time-off/t1", BLOCK).status == 404
    assert api.get("/doctors/nobody/time-off", query={"from": MON, "to": MON}).status == 404
    assert api.delete("/doctors/nobody/time-off/t1").status == 404
    assert api.put("/doctors/dr-lima/time-off/bad id!", BLOCK).status == 400


def test_holidays_of_a_country_and_year(api: Api) -> None:
    reply = api.get("/holidays/PE", query={"year": "2026"})
    assert reply.status == 200
    assert (reply.json["country"], reply.json["year"]) == ("PE", 2026)
    holidays = reply.json["holidays"]
    assert {"date": "2026-07-28", "name": "Día de la Independencia"} in holidays
    assert [h["date"] for h in holidays] == sorted(h["date"] for h in holidays)
    # Without a year: the current one (the test clock's, 2030).
    assert api.get("/holidays/CL").json["year"] == 2030


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/holidays/AR", {"year": "2026"}),
        ("/holidays/pe", {"year": "2026"}),
        ("/holidays/PE", {"year": "1999"}),
        ("/holidays/PE", {"year": "2101"}),
        ("/holidays/PE", {"year": "20x6"}),
        ("/holidays/PE", {"year": "2026", "month": "7"}),
    ],
)
def test_a_bad_holidays_query_is_a_400(api: Api, path: str, query: dict[str, str]) -> None:
    reply = api.get(path, query=query)
    assert (reply.status, reply.error_code) == (400, "validation_error")


def test_a_booking_on_a_holiday_is_422_outside_working_hours_naming_it(api: Api) -> None:
    # 2030-07-29 is a Monday, "Día de la Gran Parada Militar" in Peru.
    api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "booking_horizon_days": 365})
    reply = api.post("/appointments", booking("2030-07-29T10:00:00-05:00"))
    assert (reply.status, reply.error_code) == (422, "outside_working_hours")
    assert reply.json["error"]["details"]["holiday"] == "Día de la Gran Parada Militar"


def test_too_soon_and_too_far_are_422(api: Api) -> None:
    # The clock stands at 12:00 on New Year's Day: a holiday, unless the doctor works it.
    api.put("/doctors/dr-lima", {**LIMA_DOCTOR, "works_on_holidays": True})
    soon = api.post("/appointments", booking("2030-01-01T12:30:00-05:00"))
    assert (soon.status, soon.error_code) == (422, "too_soon")
    far = api.post("/appointments", booking("2030-04-08T10:00:00-05:00"))
    assert (far.status, far.error_code) == (422, "too_far")
